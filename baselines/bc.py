"""Behaviour cloning: F-IQL's factorized MLP actor fit by maximum likelihood, the sanity floor of the benchmark."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from baselines.f_iql import MLPActor, MLPActorConfig
from spin_bench.agents.base import Agent, Batch, adam, maybe_compile, seeded
from spin_bench.agents.config import TrainConfig


@dataclass(frozen=True)
class BCConfig(MLPActorConfig, TrainConfig):
    """The training budget and F-IQL's MLP actor: no critic, so none of IQL's fields."""


class BCAgent(Agent):
    name = "bc"
    config: BCConfig
    config_class = BCConfig
    METRICS = ("actor_loss",)
    """What ``update`` returns: the negative log-likelihood of the batch's joint actions."""

    def __init__(self, obs_dim, nvec, config=None, device="cpu", seed=0):
        super().__init__(obs_dim, nvec, config, device, seed)
        cfg = self.config
        with seeded(self.seed, self.device):
            self.actor = MLPActor(self.obs_dim, self.nvec, cfg.actor_hidden, cfg.actor_dropout).to(self.device)
        self.optimizer = adam(self.actor.parameters(), cfg.lr, self.device)
        self._loss = maybe_compile(self.loss, cfg.compile, self.device)

    def _networks(self) -> dict[str, nn.Module]:
        return {"actor": self.actor}

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"optimizer": self.optimizer}

    def _sample(self, obs, deterministic, generator):
        return self.actor.sample(obs, deterministic, generator)

    def loss(self, batch: Batch) -> torch.Tensor:
        """Negative log-likelihood of the dataset's joint actions (float32: the MLP actor is never autocast)."""
        return -self.actor.log_prob(batch.observations, batch.actions).mean()

    def gradient_step(self, batch: Batch) -> torch.Tensor:
        loss = self._loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach().reshape(1)
