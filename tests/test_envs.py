import copy
import pickle
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import spin_bench
from spin_bench.envs import BENCHMARK_TASKS, DiscreteDMCEnv, DiscretizeAction, all_tasks, env_id

gym.register_envs(spin_bench)


def test_every_suite_task_is_registered_with_a_string_entry_point():
    from dm_control import suite

    assert len(all_tasks()) == len(suite.ALL_TASKS)
    for domain, task in suite.ALL_TASKS:
        spec = gym.spec(f"SPIN/{domain}-{task}-disc-v0")
        assert isinstance(spec.entry_point, str)
        assert spec.max_episode_steps == 1000
        assert spec.kwargs == {"task": f"{domain}-{task}"}
    assert env_id("dog-run") == "SPIN/dog-run-disc-v0"
    assert "SPIN/humanoid_CMU-run-disc-v0" in gym.registry


@pytest.mark.parametrize("task", BENCHMARK_TASKS)
def test_check_env_benchmark_tasks(task):
    env = gym.make(env_id(task))
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.slow
@pytest.mark.parametrize("task", [t for t in all_tasks() if t not in BENCHMARK_TASKS])
def test_check_env_every_registered_task(task):
    env = gym.make(env_id(task))
    check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_spaces_match_the_reference_table():
    expected = {
        "cheetah-run": (6, 17),
        "dog-run": (38, 223),
        "quadruped-walk": (12, 78),
        "humanoid-stand": (21, 67),
    }
    for task, (n, obs_dim) in expected.items():
        env = gym.make(env_id(task))
        assert env.action_space == gym.spaces.MultiDiscrete([3] * n)
        assert env.observation_space.shape == (obs_dim,)
        assert env.observation_space.dtype == np.float32
        obs, _ = env.reset(seed=0)
        assert obs.dtype == np.float32 and obs.shape == (obs_dim,)


def test_three_bins_on_cheetah_are_exactly_minus_one_zero_one():
    env = gym.make("SPIN/cheetah-run-disc-v0").unwrapped
    for values in env.bin_values:
        assert values.tolist() == [-1.0, 0.0, 1.0]
    np.testing.assert_array_equal(env.indices_to_action(np.array([0, 1, 2, 0, 1, 2])), [-1, 0, 1, -1, 0, 1])


def test_quadruped_uses_each_actuators_own_bounds():
    env = gym.make("SPIN/quadruped-walk-disc-v0").unwrapped
    lows = [v[0] for v in env.bin_values]
    highs = [v[-1] for v in env.bin_values]
    assert lows[:3] == [-1.0, -1.0, -0.8] and highs[:3] == [1.0, 1.1, 0.8]
    assert env.bin_values[1].tolist() == pytest.approx([-1.0, 0.05, 1.1])
    # Round trip indices -> continuous -> indices.
    idx = env.action_space.sample()
    np.testing.assert_array_equal(env.action_to_indices(env.indices_to_action(idx)), idx)


def test_ten_bins_match_linspace_and_per_dimension_bins():
    env = gym.make("SPIN/cheetah-run-disc-v0", bins=10).unwrapped
    assert env.action_space.nvec.tolist() == [10] * 6
    np.testing.assert_array_equal(env.bin_values[0], np.linspace(-1, 1, 10))
    mixed = gym.make("SPIN/cheetah-run-disc-v0", bins=[2, 3, 4, 5, 6, 7]).unwrapped
    assert mixed.action_space.nvec.tolist() == [2, 3, 4, 5, 6, 7]
    np.testing.assert_array_equal(mixed.bin_values[5], np.linspace(-1, 1, 7))
    assert np.isnan(mixed.bin_table[0, 2:]).all()


def _rollout(env, seed, actions):
    obs, _ = env.reset(seed=seed)
    observations, rewards = [obs], []
    for a in actions:
        obs, r, terminated, truncated, _ = env.step(a)
        observations.append(obs)
        rewards.append(r)
        assert not terminated
    return np.stack(observations), np.array(rewards)


def test_same_seed_and_actions_give_bit_identical_rollouts():
    env = gym.make("SPIN/walker-walk-disc-v0")
    actions = np.random.default_rng(0).integers(0, 3, size=(200, 6))
    obs1, rew1 = _rollout(env, 7, actions)
    _rollout(env, 123, actions)  # a different episode in between must not leak state
    obs2, rew2 = _rollout(env, 7, actions)
    assert obs1.tobytes() == obs2.tobytes() and rew1.tobytes() == rew2.tobytes()
    obs3, _ = _rollout(gym.make("SPIN/walker-walk-disc-v0"), 8, actions)
    assert not np.array_equal(obs1[0], obs3[0])


def test_seeds_match_dm_control_and_large_seeds_work():
    from dm_control import suite

    raw = suite.load("cheetah", "run", task_kwargs={"random": 5}).reset().observation
    ours = gym.make("SPIN/cheetah-run-disc-v0", flatten=False).reset(seed=5)[0]
    np.testing.assert_array_equal(ours["position"], raw["position"].astype(np.float32))
    env = gym.make("SPIN/cheetah-run-disc-v0")
    big = [env.reset(seed=2**40 + i)[0] for i in (0, 0, 1)]
    assert big[0].tobytes() == big[1].tobytes() != big[2].tobytes()


def test_truncation_at_one_thousand_steps_never_terminates_then_step_needs_a_reset():
    env = gym.make("SPIN/cheetah-run-disc-v0")
    env.reset(seed=0)
    action = np.ones(6, dtype=np.int64)
    for t in range(1, 1001):
        _, _, terminated, truncated, _ = env.step(action)
        assert not terminated
        assert truncated == (t == 1000)
    for _ in range(2):  # every step after the end is refused, not only the first
        with pytest.raises(gym.error.ResetNeeded, match=r"cheetah-run: step\(\) called after the episode ended; call"):
            env.step(action)
    first = env.reset(seed=0)[0]
    assert env.step(action)[0].shape == first.shape


def test_step_before_the_first_reset_is_refused():
    env = DiscreteDMCEnv("cheetah-run")
    with pytest.raises(gym.error.ResetNeeded, match=r"before the first reset\(\); call reset\(\) first"):
        env.step(np.ones(6, dtype=np.int64))
    env.reset(seed=0)
    env.step(np.ones(6, dtype=np.int64))


def _lqr_rollout(seed):
    env = gym.make("SPIN/lqr-lqr_6_2-disc-v0")
    obs, _ = env.reset(seed=seed)
    actions = np.random.default_rng(0).integers(0, 3, size=(30, 2))  # longer bang-bang control destabilizes it
    rewards = [env.step(a)[1] for a in actions]
    return obs, np.array(rewards), env.unwrapped.physics.model.jnt_stiffness.copy()


def test_lqr_is_deterministic_given_the_seed_model_included():
    from dm_control import suite

    obs, rewards, stiffness = _lqr_rollout(3)
    obs2, rewards2, stiffness2 = _lqr_rollout(3)  # a second instance: dm_control draws the model at build time
    assert obs.tobytes() == obs2.tobytes() and rewards.tobytes() == rewards2.tobytes()
    np.testing.assert_array_equal(stiffness, stiffness2)
    other = _lqr_rollout(4)
    assert not np.array_equal(other[2], stiffness)  # the seed draws the model
    raw = suite.load("lqr", "lqr_6_2", task_kwargs={"random": 3})
    np.testing.assert_array_equal(raw.physics.model.jnt_stiffness, stiffness)  # as dm_control's random=seed
    np.testing.assert_array_equal(raw.reset().observation["position"].astype(np.float32), obs[:6])
    env = gym.make("SPIN/lqr-lqr_6_2-disc-v0")
    env.reset(seed=3)
    env.reset()  # an unseeded reset keeps the model
    np.testing.assert_array_equal(env.unwrapped.physics.model.jnt_stiffness, stiffness)


def test_lqr_truncates_at_one_thousand_steps_without_the_wrapper():
    env = DiscreteDMCEnv("lqr-lqr_2_1")  # dm_control's lqr has no time limit of its own
    env.reset(seed=0)
    for t in range(1, 1001):
        _, _, terminated, truncated, _ = env.step(np.array([1]))
        assert not terminated and truncated == (t == 1000)
    with pytest.raises(gym.error.ResetNeeded):
        env.step(np.array([1]))


_ESCAPE_ROLLOUT = (
    "import gymnasium as gym, numpy as np, os, spin_bench\n"
    "env = gym.make('SPIN/quadruped-escape-disc-v0')\n"
    "obs, _ = env.reset(seed=2)\n"
    "for _ in range(5):\n"
    "    obs, reward, *_ = env.step(np.full(12, 2))\n"
    "print(os.environ['MUJOCO_GL'], obs.tobytes().hex(), reward)\n"
)


def test_quadruped_escape_runs_without_an_opengl_backend():
    env = {k: v for k, v in __import__("os").environ.items() if k != "DISPLAY"}
    headless = subprocess.run(
        [sys.executable, "-c", _ESCAPE_ROLLOUT], capture_output=True, text=True, env={**env, "MUJOCO_GL": "disable"}
    )
    assert headless.returncode == 0, headless.stderr[-2000:]
    backend, observation, reward = headless.stdout.split()
    assert backend == "disable"
    here = {}
    exec(_ESCAPE_ROLLOUT.replace("print(", "here['out'] = ("), {"here": here})
    assert here["out"][1:] == (observation, float(reward))  # rendering or not, the same physics


def test_quadruped_escape_renders_the_terrain_of_the_current_episode():
    def frame(env, seed):
        env.reset(seed=seed)
        return env.render()

    shown = gym.make("SPIN/quadruped-escape-disc-v0", render_mode="rgb_array", width=64, height=48)
    try:
        first = frame(shown, 0)
    except RuntimeError as err:  # no OpenGL backend in this session
        pytest.skip(str(err))
    again = frame(shown, 1)  # a rendering context exists: the reset uploads the new terrain
    fresh = frame(gym.make("SPIN/quadruped-escape-disc-v0", render_mode="rgb_array", width=64, height=48), 1)
    assert not np.array_equal(first, again)
    np.testing.assert_array_equal(again, fresh)  # a context made after the reset shows the same terrain


def test_dict_observations_when_not_flattened():
    env = gym.make("SPIN/cheetah-run-disc-v0", flatten=False)
    obs, _ = env.reset(seed=0)
    assert list(obs) == ["position", "velocity"]
    assert obs["position"].dtype == np.float32 and obs["position"].shape == (8,)
    flat = gym.make("SPIN/cheetah-run-disc-v0").reset(seed=0)[0]
    np.testing.assert_array_equal(flat, np.concatenate([obs["position"], obs["velocity"]]))


def test_fresh_env_pickles_and_deepcopies():
    env = DiscreteDMCEnv("finger-spin", bins=5)
    for clone in (pickle.loads(pickle.dumps(env)), copy.deepcopy(env)):
        assert clone.action_space == env.action_space
        a = env.reset(seed=3)[0]
        b = clone.reset(seed=3)[0]
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize(
    "action, message",
    [
        (np.zeros(5, dtype=np.int64), r"shape \(5,\); expected \(6,\)"),
        (np.zeros(6, dtype=np.float32), "dtype float32"),
        (
            np.array([0, 1, 2, 3, 0, 0]),
            r"action\[3\]=3 is out of range for dimension 3: allowed bin indices are 0..2",
        ),
        (np.array([0, -1, 0, 0, 0, 0]), r"action\[1\]=-1 is out of range"),
    ],
)
def test_bad_actions_raise_naming_dimension_and_value(action, message):
    env = gym.make("SPIN/cheetah-run-disc-v0")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=message):
        env.step(action)


@pytest.mark.parametrize("bins", [1, 0, True, [3, 3], [3, 3, 3, 3, 3, 1], 2.5])
def test_bad_bins_are_rejected(bins):
    with pytest.raises(ValueError, match="bins"):
        DiscreteDMCEnv("cheetah-run", bins=bins)


def test_unknown_task_names_the_closest_valid_tasks():
    with pytest.raises(ValueError, match=r"unknown task 'cheetah-runn'; closest valid tasks: cheetah-run"):
        DiscreteDMCEnv("cheetah-runn")
    with pytest.raises(gym.error.NameNotFound, match="cheetah-run-disc"):
        gym.make("SPIN/cheetah-runn-disc-v0")


def test_prefixed_id_registers_in_a_fresh_interpreter():
    code = (
        "import gymnasium as gym, sys\n"
        "env = gym.make('spin_bench:SPIN/dog-run-disc-v0')\n"
        "obs, _ = env.reset(seed=0)\n"
        "print(obs.shape, env.action_space.nvec.size)\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("MUJOCO_GL", "DISPLAY")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "(223,) 38"
    # Headless import must not print GLFW/X11 display warnings.
    assert "DISPLAY" not in out.stderr and "GLFW" not in out.stderr


def test_rgb_array_rendering_or_a_clear_error_when_no_backend():
    env = gym.make("SPIN/cheetah-run-disc-v0", render_mode="rgb_array", width=64, height=48)
    env.reset(seed=0)
    try:
        frame = env.render()
    except RuntimeError as err:  # MUJOCO_GL=disable in this test session
        assert "rendering" in str(err).lower()
    else:
        assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8


def test_rendering_in_a_subprocess_with_the_default_headless_backend():
    code = (
        "import gymnasium as gym, spin_bench, os\n"
        "env = gym.make('SPIN/cheetah-run-disc-v0', render_mode='rgb_array', width=64, height=48, camera_id=1)\n"
        "env.reset(seed=0)\n"
        "print(os.environ['MUJOCO_GL'])\n"
        "if os.environ['MUJOCO_GL'] != 'disable':\n"
        "    f = env.render(); print(f.shape, f.dtype, int(f.std() > 0))\n"
    )
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("MUJOCO_GL", "DISPLAY")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    lines = out.stdout.split("\n")
    if lines[0] == "egl":
        assert lines[1] == "(48, 64, 3) uint8 1"


def test_discretize_action_wrapper_uses_endpoint_bins():
    env = DiscretizeAction(gym.make("Pendulum-v1"), bins=3)
    assert env.action_space == gym.spaces.MultiDiscrete([3])
    np.testing.assert_array_equal(env.action_bins.values[0], [-2.0, 0.0, 2.0])
    np.testing.assert_allclose(env.action(np.array([2])), [2.0])
    env.reset(seed=0)
    env.step(np.array([0]))
    with pytest.raises(ValueError, match=r"action\[0\]=3"):
        env.step(np.array([3]))
    with pytest.raises(ValueError, match="Box action space"):
        DiscretizeAction(gym.make("CartPole-v1"))


def test_discretize_action_wrapper_matches_the_native_env():
    import shimmy

    gym.register_envs(shimmy)
    native = gym.make("SPIN/cheetah-run-disc-v0").unwrapped
    wrapped = DiscretizeAction(gym.make("dm_control/cheetah-run-v0"), bins=3)
    for a in ([0, 1, 2, 2, 1, 0], [2, 2, 2, 0, 0, 0]):
        np.testing.assert_allclose(wrapped.action(np.array(a)), native.indices_to_action(np.array(a)))
