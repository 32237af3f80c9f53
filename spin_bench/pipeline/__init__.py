"""The maintainers' dataset pipeline: what makes the shipped checkpoints and the catalog's records.

``behaviour/`` trains, exports, rebins and diagnoses the DecQN behaviour agents; :mod:`.record` builds a dataset
and records its sha256, statistics and prefix; :mod:`.reference` measures reference scores; :mod:`.catalog_edit`
is the one way to write the catalog; :mod:`.publish`, :mod:`.card`, :mod:`.fingerprint` (``check-prefix``) and
:mod:`.migrate_digests` complete it. Its command is ``spin-bench-maintain``.

It may use anything of the user side (``spin_bench.envs``, ``spin_bench.datasets``, ...); nothing of the user side
imports it (``tests/test_user_path.py`` checks).
"""
