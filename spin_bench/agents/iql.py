"""Offline IQL with a factorized critic, written once for every IQL agent (SPIN, SAINT, F-IQL, AR-IQL).

Q(s, a) = sum_i U_i(s, a_i) per critic (a sum, not a mean: with a fixed beta the AWR weights are as sharp
as the paper's). One update:

    V     <- expectile_tau(min_k Qtarget_k(s, a) - V(s))
    Q_k   <- (r + gamma * (1 - terminal) * V(s') - Q_k(s, a))^2     # timeouts bootstrap
    actor <- -exp(beta * (min_k Qtarget_k(s, a) - V(s))).clip(max=100) * log pi(a | s)
    Qtarget <- Polyak(Q, tau)

The three losses touch disjoint parameters and their cross terms are detached, so one backward of their
sum and one Adam step over all parameters is exactly three separate Adam updates, with fewer kernel calls.

Precision: everything here is float32. Only a transformer actor's own forward pass may run under bf16
autocast (``spin_bench.agents.precision``); its logits, and so log pi, come back float32.
"""

from __future__ import annotations

import copy
from abc import abstractmethod
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from spin_bench.agents.base import Agent, Batch, adam, maybe_compile, seeded
from spin_bench.agents.config import IQLConfig
from spin_bench.agents.layers import BatchedLinear, mlp
from spin_bench.agents.policies import Actor
from spin_bench.agents.precision import AutocastForward, autocast_dtype


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """mean(|expectile - 1(diff < 0)| * diff^2) with diff = Q - V: asymmetric L2 (IQL's value loss)."""
    weight = torch.where(diff < 0, 1.0 - expectile, expectile)
    return (weight * diff.square()).mean()


def awr_weights(advantage: torch.Tensor, beta: float, clip: float) -> torch.Tensor:
    """exp(beta * A) clipped above at ``clip`` (no gradient flows through the weights)."""
    return torch.exp(beta * advantage.detach()).clamp(max=clip)


def effective_sample_fraction(weights: torch.Tensor) -> torch.Tensor:
    """(sum w)^2 / (B * sum w^2): 1 when every transition weighs the same, 1/B when one carries the update. On mixed
    data a falling value shows the actor's updates resting on ever fewer transitions (docs/learning-curves.md)."""
    return weights.sum().square() / (weights.numel() * weights.square().sum())


def awr_loss(weights: torch.Tensor, log_prob: torch.Tensor) -> torch.Tensor:
    """Advantage-weighted regression: -(w * log pi(a | s)).mean()."""
    return -(weights * log_prob).mean()


def td_target(rewards: torch.Tensor, terminals: torch.Tensor, next_value: torch.Tensor, gamma: float) -> torch.Tensor:
    """r + gamma * (1 - terminal) * V(s'): only true terminations stop the bootstrap."""
    return rewards + gamma * (1.0 - terminals) * next_value


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """target <- (1 - tau) * target + tau * source, in one fused call."""
    torch._foreach_lerp_(list(target.parameters()), list(source.parameters()), tau)


class FactorizedCritic(nn.Module):
    """An ensemble of MLPs with N * max_m utility outputs; Q_k(s, a) = sum_i U_k,i(s, a_i)."""

    def __init__(self, obs_dim: int, nvec: Sequence[int], hidden: Sequence[int], num_critics: int):
        super().__init__()
        self.num_critics = num_critics
        self.nvec = tuple(int(m) for m in nvec)
        widths = [obs_dim, *hidden, len(self.nvec) * max(self.nvec)]
        pairs = zip(widths[:-1], widths[1:], strict=True)
        self.layers = nn.ModuleList(BatchedLinear(num_critics, i, o) for i, o in pairs)

    def utilities(self, obs: torch.Tensor) -> torch.Tensor:
        """(K, B, N, max_m); padded bins are never indexed because dataset actions are in range."""
        x = obs.unsqueeze(0).expand(self.num_critics, -1, -1)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x.view(self.num_critics, obs.shape[0], len(self.nvec), max(self.nvec))

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(K, B) Q-values of the joint actions."""
        u = self.utilities(obs)
        index = actions.unsqueeze(0).unsqueeze(-1).expand(self.num_critics, -1, -1, 1)
        return u.gather(-1, index).squeeze(-1).float().sum(-1)


class ValueNet(nn.Module):
    """V(s): an MLP with one output."""

    def __init__(self, obs_dim: int, hidden: Sequence[int]):
        super().__init__()
        self.net = mlp(obs_dim, hidden, 1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1).float()


class IQLTerms(NamedTuple):
    """One batch's IQL quantities, all float32; the losses are built from these."""

    q_target: torch.Tensor
    """(B,) min_k Qtarget_k(s, a), no gradient."""
    td_target: torch.Tensor
    """(B,) r + gamma * (1 - terminal) * V(s'), no gradient."""
    v: torch.Tensor
    """(B,) V(s)."""
    q: torch.Tensor
    """(K, B) Q_k(s, a) of each critic."""
    advantage: torch.Tensor
    """(B,) q_target - V(s)."""
    weights: torch.Tensor
    """(B,) AWR weights exp(beta * advantage) clipped, no gradient."""
    log_prob: torch.Tensor
    """(B,) log pi(a | s) of the dataset action."""


class IQLAgent(Agent):
    """IQL with a factorized critic around any :class:`Actor`; subclasses only build the actor."""

    config: IQLConfig
    config_class = IQLConfig
    METRICS = (
        "value_loss",
        "critic_loss",
        "actor_loss",
        "q",
        "v",
        "advantage",
        "awr_weight",
        "awr_clipped",
        "awr_ess",
    )
    """What ``update`` returns: the three losses, mean Q(s, a), V(s), advantage, AWR weight, clipped fraction, and
    the AWR weights' effective sample size as a fraction of the batch (see ``effective_sample_fraction``)."""

    def __init__(self, obs_dim, nvec, config=None, device="cpu", seed=0):
        super().__init__(obs_dim, nvec, config, device, seed)
        cfg = self.config
        with seeded(self.seed, self.device):  # same seed, same initial weights, caller's RNG untouched
            self.actor = self.build_actor().to(self.device)
            self.critic = FactorizedCritic(self.obs_dim, self.nvec, cfg.critic_hidden, cfg.num_critics).to(self.device)
            self.value = ValueNet(self.obs_dim, cfg.value_hidden).to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        if isinstance(self.actor, AutocastForward):  # a transformer actor: bf16 forward on CUDA when asked
            self.actor.autocast_dtype = autocast_dtype(self.device, cfg.bf16)
        # Frozen parameters (SPIN's copied ASM) never reach the optimizer, so Adam cannot move them.
        groups = [
            {"params": [p for p in net.parameters() if p.requires_grad], "name": name}
            for name, net in (("actor", self.actor), ("critic", self.critic), ("value", self.value))
        ]
        self.optimizer = adam(groups, cfg.lr, self.device)
        self._losses = maybe_compile(self.losses, cfg.compile, self.device)

    @abstractmethod
    def build_actor(self) -> Actor:
        """The policy network (built under the agent's seed)."""

    def _networks(self) -> dict[str, nn.Module]:
        return {"actor": self.actor, "critic": self.critic, "critic_target": self.critic_target, "value": self.value}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"optimizer": self.optimizer}

    def _sample(self, obs, deterministic, generator):
        return self.actor.sample(obs, deterministic, generator)

    def _autocast_passes(self) -> dict[str, torch.dtype | None]:
        return {"actor": self.actor.autocast_dtype} if isinstance(self.actor, AutocastForward) else {}

    def terms(self, batch: Batch) -> IQLTerms:
        """Targets, values, advantages, AWR weights and log pi of one batch, in float32."""
        cfg = self.config
        with torch.no_grad():
            q_target = self.critic_target(batch.observations, batch.actions).min(0).values
            target = td_target(batch.rewards, batch.terminals, self.value(batch.next_observations), cfg.gamma)
        v = self.value(batch.observations)
        advantage = q_target - v
        q = self.critic(batch.observations, batch.actions)
        weights = awr_weights(advantage, cfg.beta, cfg.weight_clip)
        log_prob = self.actor.log_prob(batch.observations, batch.actions)
        return IQLTerms(q_target, target, v, q, advantage, weights, log_prob)

    def losses(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """The summed IQL loss and a vector of metrics (kept on device until one transfer)."""
        cfg = self.config
        t = self.terms(batch)
        value_loss = expectile_loss(t.advantage, cfg.expectile)
        critic_loss = (t.q - t.td_target.unsqueeze(0)).square().mean()
        actor_loss = awr_loss(t.weights, t.log_prob)
        metrics = torch.stack(
            [
                value_loss.detach(),
                critic_loss.detach(),
                actor_loss.detach(),
                t.q.detach().mean(),
                t.v.detach().mean(),
                t.advantage.detach().mean(),
                t.weights.mean(),
                (t.weights >= cfg.weight_clip).float().mean(),
                effective_sample_fraction(t.weights),
            ]
        )
        return value_loss + critic_loss + actor_loss, metrics

    def gradient_step(self, batch: Batch) -> torch.Tensor:
        loss, metrics = self._losses(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        polyak_update(self.critic_target, self.critic, self.config.tau)
        return metrics
