"""Mixed precision: only transformer forward passes are autocast; critics, values, advantages, AWR weights and
losses stay float32. The CUDA path is emulated on CPU with bf16 autocast, and run for real where CUDA exists."""

import numpy as np
import pytest
import torch

from spin_bench.agents import Batch, SPINConfig
from spin_bench.agents.precision import autocast_dtype, describe_precision
from spin_bench.agents.spin import ActionStructureModel, masked_modelling_loss
from spin_bench.registry import AGENT_NAMES, make_agent

pytestmark = pytest.mark.usefixtures("one_torch_thread")

OBS_DIM, NVEC, BATCH = 6, (3, 4, 3, 2), 64
SMALL = dict(d_model=32, num_heads=2, num_blocks=2, head_hidden=32, critic_hidden=(64,), value_hidden=(64,))
Q_LEVEL = 70.0
ADVANTAGE_ATOL = 1e-5
"""About one float32 ulp at 70 (7.6e-6); bf16's spacing at 70 is 0.5."""
WEIGHT_RTOL = 1e-4
"""beta = 3 times the advantage tolerance, with margin."""
CUDA = [pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"))]


def batch_near_q_level(device: str) -> Batch:
    """One batch whose TD targets are near 70 (rewards 0.7 + 0.99 * V(s') with V near 70)."""
    rng = np.random.default_rng(0)
    t = lambda a: torch.as_tensor(a, device=device)  # noqa: E731
    return Batch(
        observations=t(rng.normal(size=(BATCH, OBS_DIM)).astype(np.float32)),
        actions=t(np.stack([rng.integers(0, m, BATCH) for m in NVEC], 1)),
        rewards=t(np.full(BATCH, 0.7, np.float32)),
        next_observations=t(rng.normal(size=(BATCH, OBS_DIM)).astype(np.float32)),
        terminals=t(np.zeros(BATCH, np.float32)),
    )


def agent_near_q_level(name: str, device: str, **overrides):
    """A SAINT/SPIN-sized agent whose critics, target critics and value all output about 70."""
    settings = dict(preset="quick", device=device, seed=0, batch_size=BATCH)
    agent = make_agent(name, OBS_DIM, NVEC, **settings, **SMALL, **overrides)
    with torch.no_grad():
        for critic in (agent.critic, agent.critic_target):
            critic.layers[-1].bias.add_(Q_LEVEL / len(NVEC))  # Q = sum of N utilities
        agent.value.net[-1].bias.add_(Q_LEVEL)
    return agent


def emulate_cuda_bf16(agent) -> None:
    """What bf16=True gives on CUDA, on this agent's device: the transformer actor's forward under bf16 autocast."""
    agent.actor.autocast_dtype = torch.bfloat16


def test_bf16_autocast_at_q_70_really_moves_a_critics_output():
    """The setting below is one where bf16 matters: a critic under autocast is off by far more than the tolerance."""
    agent, batch = agent_near_q_level("saint", "cpu"), batch_near_q_level("cpu")
    with torch.no_grad():
        q32 = agent.critic(batch.observations, batch.actions)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            q16 = agent.critic(batch.observations, batch.actions)
    assert q32.mean().item() == pytest.approx(Q_LEVEL, abs=3.0)
    assert (q16 - q32).abs().mean().item() > 1000 * ADVANTAGE_ATOL


@pytest.mark.parametrize("device", ["cpu", *CUDA])
@pytest.mark.parametrize("name", ["saint", "spin"])
def test_bf16_actor_leaves_advantages_awr_weights_and_critic_updates_float32(name, device):
    batch = batch_near_q_level(device)
    reference = agent_near_q_level(name, device, bf16=False)
    mixed = agent_near_q_level(name, device, bf16=True)
    if device == "cpu":
        emulate_cuda_bf16(mixed)
    assert mixed.actor.autocast_dtype == torch.bfloat16 and reference.actor.autocast_dtype is None
    if name == "spin":  # stage 2 needs an ASM in the trunk; the same random trunk for both is enough here
        reference.asm_key = mixed.asm_key = "test: untrained trunk"

    torch.manual_seed(0)  # the same dropout masks in both actors
    exact = reference.terms(batch)
    torch.manual_seed(0)
    mixed_terms = mixed.terms(batch)

    # The actor really ran in bf16 (its log-probs moved), and handed back float32.
    assert mixed_terms.log_prob.dtype == torch.float32
    assert not torch.allclose(mixed_terms.log_prob, exact.log_prob, rtol=1e-5, atol=1e-5)
    # Everything the critics and the value give stays float32-exact.
    assert exact.q.mean().item() == pytest.approx(Q_LEVEL, abs=3.0)
    for field in ("q_target", "td_target", "v", "q", "advantage"):
        got, want = getattr(mixed_terms, field), getattr(exact, field)
        assert got.dtype == torch.float32, field
        torch.testing.assert_close(got, want, rtol=0, atol=ADVANTAGE_ATOL, msg=field)
    assert exact.weights.max().item() < mixed.config.weight_clip  # the weights are compared unclipped
    torch.testing.assert_close(mixed_terms.weights, exact.weights, rtol=WEIGHT_RTOL, atol=0)

    # One whole update: critics and value move exactly as in float32; the actor's step differs.
    torch.manual_seed(0)
    exact_metrics = reference.update(batch)
    torch.manual_seed(0)
    mixed_metrics = mixed.update(batch)
    for net in ("critic", "critic_target", "value"):
        for got, want in zip(getattr(mixed, net).parameters(), getattr(reference, net).parameters(), strict=True):
            torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7, msg=net)
    for key in ("value_loss", "critic_loss", "q", "v", "advantage", "awr_weight"):
        assert mixed_metrics[key] == pytest.approx(exact_metrics[key], rel=WEIGHT_RTOL, abs=ADVANTAGE_ATOL), key
    trained = [p for p in mixed.actor.parameters() if p.requires_grad]
    reference_trained = [p for p in reference.actor.parameters() if p.requires_grad]
    assert any(not torch.equal(a, b) for a, b in zip(trained, reference_trained, strict=True))


def test_asm_forward_runs_in_bf16_and_hands_back_float32_logits():
    cfg = SPINConfig(**SMALL, dropout=0.0)
    model = ActionStructureModel(OBS_DIM, NVEC, cfg)
    batch = batch_near_q_level("cpu")
    exact = model(batch.observations, batch.actions)
    model.autocast_dtype = torch.bfloat16
    mixed = model(batch.observations, batch.actions)
    assert mixed.dtype == torch.float32
    finite = torch.isfinite(exact)
    assert not torch.equal(mixed[finite], exact[finite])  # the trunk really ran in bf16
    torch.testing.assert_close(mixed[finite], exact[finite], rtol=0.05, atol=0.05)
    selected = torch.ones_like(batch.actions, dtype=torch.bool)
    assert masked_modelling_loss(mixed, batch.actions, selected).dtype == torch.float32


def test_precision_records_what_runs_autocast():
    assert autocast_dtype(torch.device("cuda"), True) == torch.bfloat16
    assert autocast_dtype(torch.device("cuda"), False) is None
    assert autocast_dtype(torch.device("cpu"), True) is None
    assert describe_precision({"actor": torch.bfloat16, "ASM": torch.bfloat16}) == (
        "bf16 autocast: actor and ASM forward passes; critics, values and losses float32"
    )
    assert describe_precision({"actor": None}) == "float32"
    for name in AGENT_NAMES:  # CPU ignores bf16
        assert make_agent(name, OBS_DIM, NVEC, preset="quick", bf16=True).precision == "float32"
    saint = make_agent("saint", OBS_DIM, NVEC, preset="quick", **SMALL)
    emulate_cuda_bf16(saint)
    assert saint.precision == "bf16 autocast: actor forward pass; critics, values and losses float32"


@pytest.mark.parametrize("device", CUDA)
def test_precision_on_cuda_names_only_the_transformer_passes(device):
    expected = {
        "spin": "bf16 autocast: actor and ASM forward passes; critics, values and losses float32",
        "saint": "bf16 autocast: actor forward pass; critics, values and losses float32",
        "f-iql": "float32",
        "ar-iql": "float32",
        "bc": "float32",
    }
    for name in AGENT_NAMES:
        assert make_agent(name, OBS_DIM, NVEC, preset="quick", device=device).precision == expected[name]
        assert make_agent(name, OBS_DIM, NVEC, preset="quick", device=device, bf16=False).precision == "float32"
