"""``compile=True`` on CPU: the compiled update computes what the eager one does, dropout masks included."""

import numpy as np
import pytest
import torch

from spin_bench.agents import TransitionSampler
from spin_bench.datasets import Transitions
from spin_bench.registry import make_agent

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SMALL = {
    "d_model": 16,
    "num_heads": 2,
    "num_blocks": 1,
    "head_hidden": 16,
    "critic_hidden": (32,),
    "value_hidden": (32,),
}


def random_transitions(obs_dim=5, nvec=(3, 2, 4), rows=500) -> Transitions:
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(rows, obs_dim)).astype(np.float32)
    actions = np.stack([rng.integers(0, m, rows) for m in nvec], 1).astype(np.int8)
    done = np.zeros(rows, bool)
    return Transitions(
        obs, actions, rng.normal(size=rows).astype(np.float32), obs[::-1].copy(), done, done, np.array(nvec)
    )


@pytest.mark.slow  # compiling takes tens of seconds on CPU
def test_a_compiled_saint_update_equals_the_eager_one_with_the_same_dropout_masks():
    """Same init, same batches, same global RNG: the same losses and gradients (a different dropout mask would
    change both far beyond rounding). Parameters are not compared after Adam, which amplifies rounding differences
    in near-zero gradients up to its step size."""
    data = random_transitions()
    eager = make_agent("saint", data.obs_dim, data.nvec, "quick", "cpu", 0, **SMALL)
    compiled = make_agent("saint", data.obs_dim, data.nvec, "quick", "cpu", 0, compile=True, **SMALL)
    assert compiled._losses != compiled.losses  # compiled, not silently left eager
    sampler = TransitionSampler(data, "cpu", 0)
    for step in range(3):
        batch = sampler.sample(64)
        torch.manual_seed(step)
        expected = eager.update(batch)
        after_eager = torch.get_rng_state()
        torch.manual_seed(step)
        got = compiled.update(batch)
        assert torch.equal(torch.get_rng_state(), after_eager)  # the same random draws
        assert got == pytest.approx(expected, rel=1e-4, abs=1e-6)
        for ours, theirs in zip(compiled.actor.parameters(), eager.actor.parameters(), strict=True):
            torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-3, atol=1e-5)
