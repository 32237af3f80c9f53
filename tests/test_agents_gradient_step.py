"""``gradient_step``: an update's device work alone, with no host read, so one CUDA graph can capture it."""

import numpy as np
import pytest
import torch

from spin_bench.agents import TransitionSampler
from spin_bench.agents.base import Agent
from spin_bench.datasets import Transitions
from spin_bench.registry import AGENT_NAMES, make_agent

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NVEC = (3, 2, 4)
HOST_READS = ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__")


def sampler(obs_dim: int = 5, rows: int = 64) -> TransitionSampler:
    rng = np.random.default_rng(0)
    data = Transitions(
        rng.normal(size=(rows, obs_dim)).astype(np.float32), (rng.random((rows, 3)) * NVEC).astype(np.int8),
        rng.normal(size=rows).astype(np.float32), rng.normal(size=(rows, obs_dim)).astype(np.float32),
        np.zeros(rows, bool), np.zeros(rows, bool), np.asarray(NVEC, np.int64),
    )  # fmt: skip
    return TransitionSampler(data, "cpu", 0)


def agent(name: str) -> Agent:
    built = make_agent(name, 5, NVEC, "quick", "cpu", 0, batch_size=8)
    if name == "spin":  # stage 2 on the untrained frozen trunk
        built.asm_key = "test: untrained frozen trunk"
    return built


@pytest.mark.parametrize("name", AGENT_NAMES)
def test_gradient_step_reads_nothing_back_to_the_host_and_changes_no_python_state(name, monkeypatch):
    trained, batches = agent(name), sampler()
    batch = batches.sample(8)
    before = [p.detach().clone() for net in trained._networks().values() for p in net.parameters()]

    def refuse(self, *args, **kwargs):
        raise AssertionError("gradient_step read a tensor back to the host")

    for method in HOST_READS:
        monkeypatch.setattr(torch.Tensor, method, refuse)
    metrics = trained.gradient_step(batch)
    monkeypatch.undo()

    assert trained.step == 0
    assert metrics.shape == (len(trained.METRICS),) and metrics.device == trained.device
    after = [p.detach() for net in trained._networks().values() for p in net.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))  # it did step


@pytest.mark.parametrize("name", AGENT_NAMES)
def test_update_is_a_gradient_step_and_its_metrics_read_once(name):
    batch = sampler().sample(8)
    stepped, updated = agent(name), agent(name)
    torch.manual_seed(1)  # the same dropout masks for both
    expected = stepped.finish_update(stepped.gradient_step(batch))
    torch.manual_seed(1)
    assert updated.update(batch) == expected
    assert list(expected) == list(updated.METRICS) and updated.step == stepped.step == 1


def test_an_agent_that_provides_no_gradient_step_says_so_by_name():
    with pytest.raises(NotImplementedError, match="BCAgent provides no gradient_step; use update"):
        Agent.gradient_step(agent("bc"), sampler().sample(8))
