"""SPIN stage 1 (masked action modelling, the ASM cache) and stage 2 (frozen trunk, trainable slots and heads)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spin_bench.agents import SPINConfig, TransitionSampler
from spin_bench.agents.spin import asm_cache_key, load_or_pretrain_asm, mask_actions, masked_modelling_loss
from spin_bench.datasets import Transitions
from spin_bench.registry import make_agent

SMALL = dict(
    d_model=16, num_heads=2, num_blocks=2, head_hidden=16, critic_hidden=(16,), value_hidden=(16,), batch_size=16
)
ASM_SHORT = dict(asm_epochs=4.0, asm_batch_size=64)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def transitions(n=256, obs_dim=5, nvec=(3, 4, 2), seed=0):
    rng = np.random.default_rng(seed)
    nvec = np.asarray(nvec)
    obs = rng.normal(size=(n, obs_dim)).astype(np.float32)
    return Transitions(
        obs, (rng.random((n, len(nvec))) * nvec).astype(np.int8), rng.normal(size=n).astype(np.float32),
        np.roll(obs, -1, 0), np.zeros(n, bool), np.arange(n) % 64 == 63, nvec.astype(np.int64),
    )  # fmt: skip


def test_masking_selects_15_percent_then_80_10_10():
    cfg = SPINConfig()
    nvec = torch.tensor([3, 5, 2, 4])
    actions = (torch.rand(50_000, 4, generator=torch.Generator().manual_seed(0)) * nvec).long()
    inputs, selected = mask_actions(actions, nvec, cfg, torch.Generator().manual_seed(1))
    assert selected.float().mean().item() == pytest.approx(0.15, abs=0.005)
    assert torch.equal(inputs[~selected], actions[~selected])  # unselected tokens untouched
    masked = inputs == nvec  # the [MASK] id of dimension i is m_i
    assert not masked[~selected].any()
    assert masked[selected].float().mean().item() == pytest.approx(0.8, abs=0.01)
    assert (inputs < nvec)[selected & ~masked].all()  # random replacements stay in range
    # 10% random + 10% unchanged: a random bin differs from the truth with probability 1 - 1/m_i.
    changed = (selected & ~masked & (inputs != actions)).sum() / selected.sum()
    expected = 0.1 * (1 - (1 / nvec.float())).mean()
    assert changed.item() == pytest.approx(expected.item(), abs=0.01)


def test_at_least_one_token_is_selected_per_batch():
    cfg = SPINConfig(mask_prob=1e-9)  # below float32 rand's resolution: the Bernoulli draw selects nothing
    actions = torch.zeros(8, 3, dtype=torch.long)
    for seed in range(5):
        _, selected = mask_actions(actions, torch.tensor([3, 3, 3]), cfg, torch.Generator().manual_seed(seed))
        assert selected.sum().item() == 1


def test_masked_modelling_loss_averages_over_selected_tokens():
    logits = torch.randn(4, 3, 5)
    actions = torch.randint(0, 5, (4, 3))
    selected = torch.tensor([[1, 0, 0], [0, 0, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    expected = F.cross_entropy(logits[selected], actions[selected])  # mean over the 4 selected tokens
    assert masked_modelling_loss(logits, actions, selected).item() == pytest.approx(expected.item(), rel=1e-6)


def test_asm_pretraining_is_deterministic_and_cached(tmp_path):
    data = transitions()
    cfg = SPINConfig(**SMALL, **ASM_SHORT)
    first, record = load_or_pretrain_asm(data, cfg, seed=3, device=torch.device("cpu"), cache_dir=tmp_path)
    assert not record.cached and record.seconds > 0 and record.steps == 16  # 4 epochs of ceil(256 / 64)
    assert len(record.epoch_losses) == 4 and all(np.isfinite(record.epoch_losses))
    again, hit = load_or_pretrain_asm(data, cfg, seed=3, device=torch.device("cpu"), cache_dir=tmp_path)
    assert hit.cached and hit.key == record.key and hit.seconds == record.seconds
    uncached, _ = load_or_pretrain_asm(data, cfg, seed=3, device=torch.device("cpu"))
    states = [m.state_dict() for m in (first, again, uncached)]
    for key, value in states[0].items():
        assert torch.equal(value, states[1][key]) and torch.equal(value, states[2][key]), key
    # Another seed, ASM setting or dataset is another cache entry.
    keys = {record.key}
    for other_data, other_cfg, seed in [
        (data, cfg, 4),
        (data, SPINConfig(**SMALL, asm_epochs=4.0, asm_batch_size=64, mask_prob=0.2), 3),
        (transitions(seed=1), cfg, 3),
    ]:
        _, rec = load_or_pretrain_asm(other_data, other_cfg, seed, torch.device("cpu"), tmp_path)
        assert not rec.cached
        keys.add(rec.key)
    assert len(keys) == 4 and len(list(tmp_path.glob("asm-*.pt"))) == 4
    # Stage-2 settings are not part of the key.
    _, rec = load_or_pretrain_asm(data, SPINConfig(**SMALL, **ASM_SHORT, beta=1.0), 3, torch.device("cpu"), tmp_path)
    assert rec.cached


def test_the_cache_key_names_the_forward_pass_precision():
    cfg = SPINConfig(**SMALL, **ASM_SHORT)
    keys = {asm_cache_key("data", (3, 4, 2), 0, cfg, dtype) for dtype in (None, torch.bfloat16, torch.float16)}
    assert len(keys) == 3  # a float32 ASM is never served to a bf16 run, nor the reverse


def test_a_cache_dir_under_home_is_expanded(tmp_path, monkeypatch):
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    data = transitions()
    agent = make_agent("spin", 5, [3, 4, 2], seed=0, **SMALL, **ASM_SHORT)
    agent.pretrain(data, cache_dir="~/.cache/spin-bench/asm")  # as the README writes it
    assert len(list((home / ".cache/spin-bench/asm").glob("asm-*.pt"))) == 1
    assert not (work / "~").exists()
    again = make_agent("spin", 5, [3, 4, 2], seed=0, **SMALL, **ASM_SHORT)
    again.pretrain(data, cache_dir="~/.cache/spin-bench/asm")
    assert again.pretrain_record.cached


def test_spin_stage2_keeps_the_asm_trunk_bit_identical(tmp_path):
    data = transitions()
    agent = make_agent("spin", 5, [3, 4, 2], seed=0, **SMALL, **ASM_SHORT)
    with pytest.raises(RuntimeError, match="pretrain"):
        agent.update(TransitionSampler(data).sample(16))
    seconds = agent.pretrain(data, tmp_path)
    assert seconds > 0 and agent.pretrain_seconds == seconds
    asm, _ = load_or_pretrain_asm(data, agent.config, 0, agent.device, tmp_path)
    for key, value in asm.trunk.state_dict().items():
        assert torch.equal(agent.actor.trunk.state_dict()[key], value)

    trunk = {k: v.clone() for k, v in agent.actor.trunk.state_dict().items()}
    slots, heads = agent.actor.slots.detach().clone(), [p.detach().clone() for p in agent.actor.heads.parameters()]
    optimized = {id(p) for group in agent.optimizer.param_groups for p in group["params"]}
    assert not any(id(p) in optimized for p in agent.actor.trunk.parameters())
    assert all(not p.requires_grad for p in agent.actor.trunk.parameters())

    sampler = TransitionSampler(data, seed=0)
    for _ in range(30):
        agent.update(sampler.sample(16))
    for key, value in agent.actor.trunk.state_dict().items():
        assert torch.equal(value, trunk[key]), key
    assert not torch.equal(agent.actor.slots, slots)
    assert all(not torch.equal(p, h) for p, h in zip(agent.actor.heads.parameters(), heads, strict=True))
    # Pretraining again is a no-op: the trunk is not reloaded over a stage-2 actor.
    assert agent.pretrain(data, tmp_path) == seconds


def test_saint_trains_its_whole_actor():
    agent = make_agent("saint", 5, [3, 4, 2], seed=0, **SMALL)
    trunk = [p.detach().clone() for p in agent.actor.trunk.parameters()]
    sampler = TransitionSampler(transitions(), seed=0)
    for _ in range(5):
        agent.update(sampler.sample(16))
    assert all(not torch.equal(p, q) for p, q in zip(agent.actor.trunk.parameters(), trunk, strict=True))


def test_spin_rejects_a_dataset_of_another_shape(tmp_path):
    agent = make_agent("spin", 5, [3, 3, 2], **SMALL, **ASM_SHORT)
    with pytest.raises(ValueError, match="nvec"):
        agent.pretrain(transitions(), tmp_path)
