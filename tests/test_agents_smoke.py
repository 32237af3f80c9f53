"""Every registered agent: a few hundred updates on a tiny real dataset, save/load, exact resume, evaluation."""

import dataclasses
import io

import gymnasium as gym
import numpy as np
import pytest
import torch

import spin_bench
from spin_bench.agents import PRESETS, TransitionSampler, evaluate, train_offline
from spin_bench.datasets import Transitions
from spin_bench.registry import AGENT_NAMES, make_agent, make_config, restore_agent

TASK = "cheetah-run"
OBS_DIM, NVEC = 17, [3] * 6
# Small versions of each agent: the code paths of the paper sizes at CPU-test speed.
TINY = dict(batch_size=32, critic_hidden=(32, 32), value_hidden=(32, 32))
OVERRIDES = {
    "spin": dict(d_model=16, num_heads=2, num_blocks=2, head_hidden=16, asm_epochs=3.0, asm_batch_size=64, **TINY),
    "saint": dict(d_model=16, num_heads=2, num_blocks=2, head_hidden=16, **TINY),
    "f-iql": dict(actor_hidden=(32, 32), **TINY),
    "ar-iql": dict(state_embed=16, action_embed=8, lstm_hidden=32, **TINY),
    "bc": dict(actor_hidden=(32, 32), batch_size=32),
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def rollout(task: str, episodes: int, steps: int, seed: int) -> Transitions:
    """Random-policy transitions of the real env; each episode is cut after ``steps`` (marked as a timeout)."""
    env = gym.make(spin_bench.env_id(task))
    env.action_space.seed(seed)
    rows = []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        for t in range(steps):
            action = env.action_space.sample()
            next_obs, reward, terminated, truncated, _ = env.step(action)
            rows.append((obs, action, reward, next_obs, terminated, truncated or t == steps - 1))
            obs = next_obs
    env.close()
    columns = [np.array(c) for c in zip(*rows, strict=True)]
    return Transitions(
        columns[0].astype(np.float32), columns[1].astype(np.int8), columns[2].astype(np.float32),
        columns[3].astype(np.float32), columns[4], columns[5], np.asarray(env.action_space.nvec, np.int64),
    )  # fmt: skip


@pytest.fixture(scope="module")
def data():
    return rollout(TASK, episodes=2, steps=150, seed=0)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("asm-cache")


def agent(name, seed=0):
    return make_agent(name, OBS_DIM, NVEC, seed=seed, **OVERRIDES[name])


def params(a):
    return [p.detach().clone() for net in a._networks().values() for p in net.parameters()]


def roundtrip(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("name", AGENT_NAMES)
def test_smoke_train_save_load_act(name, data, cache):
    a = agent(name)
    before = params(a)
    metrics = train_offline(a, data, num_steps=200, seed=0, cache_dir=cache)
    assert a.step == 200
    assert all(isinstance(v, float) and np.isfinite(v) for v in metrics.values()), metrics
    assert (metrics["pretrain_seconds"] > 0) == (name == "spin")
    assert any(not torch.equal(p, q) for p, q in zip(params(a), before, strict=True))

    restored = restore_agent(roundtrip(a.state_dict()))
    assert type(restored) is type(a) and restored.config == a.config and restored.step == 200
    obs = data.observations[:20]
    np.testing.assert_array_equal(restored.act(obs, deterministic=True), a.act(obs, deterministic=True))
    sampled = [x.act(obs, generator=torch.Generator().manual_seed(5)) for x in (a, restored)]
    np.testing.assert_array_equal(*sampled)
    assert sampled[0].shape == (20, 6) and sampled[0].dtype == np.int64
    assert ((sampled[0] >= 0) & (sampled[0] < 3)).all()
    assert a.act(obs[0]).shape == (6,)


@pytest.mark.parametrize("name", AGENT_NAMES)
def test_resume_from_a_checkpoint_is_exact(name, data, cache):
    a = agent(name, seed=1)
    train_offline(a, data, num_steps=10, seed=1, cache_dir=cache)
    sampler = TransitionSampler(data, seed=7)
    state, sampler_state = roundtrip(a.state_dict()), roundtrip(sampler.state_dict())
    for _ in range(10):
        a.update(sampler.sample(a.config.batch_size))

    torch.manual_seed(12345)  # a resumed process starts with another RNG state
    b = restore_agent(state)
    resumed = TransitionSampler(data, seed=0)
    resumed.load_state_dict(sampler_state)
    for _ in range(10):
        b.update(resumed.sample(b.config.batch_size))
    assert b.step == a.step == 20
    for p, q in zip(params(a), params(b), strict=True):
        assert torch.equal(p, q)
    for opt_a, opt_b in zip(a._optimizers().values(), b._optimizers().values(), strict=True):
        for sa, sb in zip(opt_a.state.values(), opt_b.state.values(), strict=True):
            assert all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("name", ["spin", "f-iql"])
def test_same_seed_same_training(name, data, cache):
    runs = []
    for _ in range(2):
        a = agent(name, seed=2)
        train_offline(a, data, num_steps=20, seed=2, cache_dir=cache)
        runs.append(params(a))
    assert all(torch.equal(p, q) for p, q in zip(*runs, strict=True))
    other = agent(name, seed=3)
    train_offline(other, data, num_steps=20, seed=3, cache_dir=cache)
    assert any(not torch.equal(p, q) for p, q in zip(runs[0], params(other), strict=True))


def test_evaluation_runs_the_real_env_and_repeats(data):
    a = agent("f-iql")
    kwargs = dict(episodes=3, seed=4, max_episode_steps=30)
    returns = evaluate(a, spin_bench.env_id(TASK), **kwargs)
    assert returns.shape == (3,) and np.isfinite(returns).all()
    np.testing.assert_array_equal(returns, evaluate(a, spin_bench.env_id(TASK), **kwargs))
    greedy = evaluate(a, spin_bench.env_id(TASK), deterministic=True, **kwargs)
    assert greedy.shape == (3,)


def test_unknown_names_raise_with_the_valid_choices():
    with pytest.raises(ValueError, match=r"'sac'.*spin, saint, f-iql, ar-iql, bc"):
        make_agent("sac", OBS_DIM, NVEC)
    with pytest.raises(ValueError, match=r"'fast'.*paper, lite, quick"):
        make_config("spin", "fast")
    with pytest.raises(ValueError, match=r"d_modle.*d_model"):
        make_config("spin", d_modle=8)


def test_presets():
    assert set(PRESETS) == {"paper", "lite", "quick"}
    for name in AGENT_NAMES:
        paper = make_config(name, "paper")
        assert paper == make_config(name) == type(paper)()
        assert (paper.num_steps, paper.batch_size, paper.eval_every, paper.eval_episodes) == (1_000_000, 256, 5000, 10)
        quick = make_config(name, "quick")
        assert quick.num_steps < paper.num_steps
        assert dataclasses.is_dataclass(quick) and type(quick).__dataclass_params__.frozen
    spin = make_config("spin")
    assert (spin.d_model, spin.num_heads, spin.num_blocks, spin.ffn_mult, spin.head_hidden) == (256, 4, 3, 2, 128)
    assert (spin.asm_epochs, spin.asm_batch_size, spin.asm_lr, spin.asm_grad_clip) == (100.0, 1024, 4e-4, 1.0)
    assert (spin.expectile, spin.beta, spin.weight_clip, spin.gamma, spin.tau, spin.lr) == (
        0.8, 3.0, 100.0, 0.99, 0.005, 3e-4,
    )  # fmt: skip


# What a smaller protocol may change: sizes and budget, never an algorithm's hyperparameters.
SIZE_AND_BUDGET = {
    "num_steps",
    "eval_every",
    "d_model",
    "num_blocks",
    "head_hidden",
    "lstm_hidden",
    "asm_steps",
    "asm_epochs",
}


def test_lite_keeps_the_papers_hyperparameters_and_protocol():
    for name in AGENT_NAMES:
        paper, lite = make_config(name, "paper"), make_config(name, "lite")
        changed = {f.name for f in dataclasses.fields(paper) if getattr(paper, f.name) != getattr(lite, f.name)}
        assert {"num_steps", "eval_every"} <= changed <= SIZE_AND_BUDGET, (name, changed)
        assert lite.eval_episodes == paper.eval_episodes == 10 and lite.batch_size == paper.batch_size
    spin = make_config("spin", "lite")
    assert spin.asm_batch_size == 1024 and spin.asm_steps is not None and spin.d_model % spin.num_heads == 0


def test_every_config_field_has_a_docstring():
    import ast
    import inspect

    from spin_bench.registry import agent_class

    classes = {c for name in AGENT_NAMES for c in agent_class(name).config_class.__mro__ if dataclasses.is_dataclass(c)}
    for cls in classes:
        body = ast.parse(inspect.getsource(cls)).body[0].body
        documented = {
            node.target.id
            for node, after in zip(body, body[1:], strict=False)
            if isinstance(node, ast.AnnAssign) and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
        }
        own = {n.target.id for n in body if isinstance(n, ast.AnnAssign)}
        assert own <= documented, (cls.__name__, own - documented)
