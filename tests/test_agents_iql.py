"""The IQL core: losses against hand-computed values, the factorized critic, targets and Polyak updates."""

import copy
import math

import numpy as np
import pytest
import torch

from spin_bench.agents import TransitionSampler, train_offline
from spin_bench.agents.iql import (
    awr_loss,
    awr_weights,
    effective_sample_fraction,
    expectile_loss,
    polyak_update,
    td_target,
)
from spin_bench.datasets import Transitions
from spin_bench.registry import make_agent

TINY_MLP = dict(actor_hidden=(16,), critic_hidden=(16,), value_hidden=(16,), batch_size=8)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_transitions(n=64, obs_dim=3, nvec=(3, 2, 4), seed=0, terminals=None, timeouts=None):
    rng = np.random.default_rng(seed)
    nvec = np.asarray(nvec)
    return Transitions(
        observations=rng.normal(size=(n, obs_dim)).astype(np.float32),
        actions=(rng.random((n, len(nvec))) * nvec).astype(np.int8),
        rewards=rng.normal(size=n).astype(np.float32),
        next_observations=rng.normal(size=(n, obs_dim)).astype(np.float32),
        terminals=np.zeros(n, bool) if terminals is None else terminals,
        timeouts=np.zeros(n, bool) if timeouts is None else timeouts,
        nvec=nvec.astype(np.int64),
    )


def test_expectile_loss_matches_hand_computation():
    diff = torch.tensor([1.0, -2.0, 0.5, 0.0])
    # weights 0.8 for diff >= 0 and 0.2 below: (0.8 * 1 + 0.2 * 4 + 0.8 * 0.25 + 0) / 4
    assert expectile_loss(diff, 0.8).item() == pytest.approx((0.8 + 0.8 + 0.2) / 4)
    assert expectile_loss(diff, 0.5).item() == pytest.approx(0.5 * (1 + 4 + 0.25) / 4)


def test_awr_weights_and_loss_match_hand_computation():
    advantage = torch.tensor([0.0, 0.5, -1.0, 2.0], requires_grad=True)
    weights = awr_weights(advantage, beta=3.0, clip=100.0)
    expected = [1.0, math.exp(1.5), math.exp(-3.0), 100.0]  # exp(6) = 403 is clipped
    assert weights.tolist() == pytest.approx(expected, rel=1e-6)
    assert not weights.requires_grad
    log_prob = torch.tensor([-1.0, -2.0, -0.5, -0.1])
    assert awr_loss(weights, log_prob).item() == pytest.approx(
        -sum(w * lp for w, lp in zip(expected, log_prob.tolist(), strict=True)) / 4, rel=1e-6
    )


def test_awr_effective_sample_fraction_matches_hand_computation_and_is_logged():
    assert effective_sample_fraction(torch.full((8,), 3.0)).item() == pytest.approx(1.0)  # equal weights
    assert effective_sample_fraction(torch.tensor([5.0, 0, 0, 0])).item() == pytest.approx(0.25)  # one carries all
    w = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert effective_sample_fraction(w).item() == pytest.approx(10.0**2 / (4 * 30.0))
    agent = make_agent("f-iql", 3, (3, 2, 4), **TINY_MLP)
    sampler = TransitionSampler(random_transitions(), agent.device, seed=0)
    batch = sampler.sample(8)
    metrics = agent.update(batch)
    assert 1 / 8 <= metrics["awr_ess"] <= 1.0


def test_td_target_stops_only_at_terminals():
    target = td_target(torch.tensor([1.0, 1.0]), torch.tensor([0.0, 1.0]), torch.tensor([10.0, 10.0]), 0.9)
    assert target.tolist() == pytest.approx([10.0, 1.0])


def test_polyak_update_moves_target_by_tau():
    source, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in target.parameters()]
    polyak_update(target, source, 0.005)
    for old, new, src in zip(before, target.parameters(), source.parameters(), strict=True):
        torch.testing.assert_close(new, 0.995 * old + 0.005 * src, rtol=0, atol=1e-7)


def test_factorized_critic_sums_per_dimension_utilities_and_targets_take_the_min():
    agent = make_agent("f-iql", 3, [3, 2, 4], seed=0, **TINY_MLP)
    batch = TransitionSampler(random_transitions(), seed=0).sample(8)
    u = agent.critic.utilities(batch.observations)  # (K, B, N, max_m)
    manual = sum(u[:, torch.arange(8), i, batch.actions[:, i]] for i in range(3))
    torch.testing.assert_close(agent.critic(batch.observations, batch.actions), manual)
    # Make the two target critics differ, then check the value loss uses their elementwise min.
    with torch.no_grad():
        agent.critic_target.layers[-1].bias[1] += 1.0
    q_min = agent.critic_target(batch.observations, batch.actions).min(0).values
    v = agent.value(batch.observations)
    _, metrics = agent.losses(batch)
    assert metrics[0].item() == pytest.approx(expectile_loss(q_min - v, 0.8).item(), rel=1e-6)


def test_critic_loss_bootstraps_through_timeouts():
    n = 32
    timeouts = np.ones(n, bool)  # every transition is the last of a truncated episode
    terminals = np.arange(n) % 4 == 0  # a few true terminations
    data = random_transitions(n, terminals=terminals, timeouts=timeouts)
    batch = TransitionSampler(data, seed=0).sample(n)
    agent = make_agent("f-iql", 3, [3, 2, 4], gamma=0.9, **TINY_MLP)
    with torch.no_grad():
        target = batch.rewards + 0.9 * (1 - batch.terminals) * agent.value(batch.next_observations)
        expected = (agent.critic(batch.observations, batch.actions) - target).square().mean()
    _, metrics = agent.losses(batch)
    assert metrics[1].item() == pytest.approx(expected.item(), rel=1e-6)
    # The sampler carries terminals only: timeouts never reach the bootstrap mask.
    index = {tuple(o): i for i, o in enumerate(data.observations.tolist())}
    expected_terminals = [float(terminals[index[tuple(o)]]) for o in batch.observations.tolist()]
    assert batch.terminals.tolist() == expected_terminals


def test_truncated_episodes_learn_the_bootstrapped_value():
    # One state, reward 1, every transition truncated (s' = s). Bootstrapping gives V = 1 / (1 - gamma) = 2;
    # treating the truncation as terminal would give V = 1.
    n = 64
    obs = np.ones((n, 1), np.float32)
    data = Transitions(
        obs,
        np.zeros((n, 2), np.int8),
        np.ones(n, np.float32),
        obs.copy(),
        np.zeros(n, bool),
        np.ones(n, bool),
        np.array([2, 2]),
    )
    agent = make_agent("f-iql", 1, [2, 2], gamma=0.5, lr=3e-3, tau=0.05, **TINY_MLP)
    train_offline(agent, data, num_steps=600)
    value = agent.value(torch.ones(1, 1)).item()
    assert value == pytest.approx(2.0, abs=0.15)


def test_one_summed_update_equals_three_separate_adam_steps():
    agent = make_agent("f-iql", 3, [3, 2, 4], seed=1, actor_dropout=0.0, **TINY_MLP)
    reference = copy.deepcopy(agent)
    batch = TransitionSampler(random_transitions(), seed=0).sample(8)
    agent.update(batch)

    cfg = reference.config
    with torch.no_grad():
        q_target = reference.critic_target(batch.observations, batch.actions).min(0).values
        target = td_target(batch.rewards, batch.terminals, reference.value(batch.next_observations), cfg.gamma)
        advantage = q_target - reference.value(batch.observations)
    parts = [
        (reference.value, lambda: expectile_loss(q_target - reference.value(batch.observations), cfg.expectile)),
        (reference.critic, lambda: (reference.critic(batch.observations, batch.actions) - target).square().mean()),
        (
            reference.actor,
            lambda: awr_loss(
                awr_weights(advantage, cfg.beta, cfg.weight_clip),
                reference.actor.log_prob(batch.observations, batch.actions),
            ),
        ),
    ]
    for net, loss_fn in parts:
        optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        optimizer.zero_grad()
        loss_fn().backward()
        optimizer.step()
    for name in ("actor", "critic", "value"):
        for a, b in zip(getattr(agent, name).parameters(), getattr(reference, name).parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
