import spin_bench  # noqa: F401  (chooses the headless MuJoCo renderer before dm_control loads)
