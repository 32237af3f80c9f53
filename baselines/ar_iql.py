"""AR-IQL baseline: IQL with a joint autoregressive actor pi(a | s) = prod_i pi(a_i | s, a_<i).

The paper's LSTM: state embedding Linear(S, 128) -> ReLU, a shared sub-action embedding of 32 with an extra
start token, a 2-layer LSTM of 256 and one linear head per dimension. Training runs the whole sequence
with teacher forcing in one LSTM call; acting samples the N sub-actions one after another, batched over
observations.

The LSTM runs in float32 even when ``bf16`` is set: its state carries bf16 rounding through N recurrent
steps (38 on dog), so the error compounds where a transformer's does not, and acting is N small sequential
steps, bound by latency rather than by matmul throughput, so bf16 would gain little.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from spin_bench.agents.config import IQLConfig
from spin_bench.agents.iql import IQLAgent
from spin_bench.agents.layers import BatchedLinear, padding_mask, short_log_softmax
from spin_bench.agents.policies import Actor, Generators, sample_categorical


@dataclass(frozen=True)
class ARIQLConfig(IQLConfig):
    state_embed: int = 128
    """Width of the state embedding fed to the LSTM at every step."""
    action_embed: int = 32
    """Width of the previous sub-action's embedding (shared table of max_m + 1 rows, the last is START)."""
    lstm_hidden: int = 256
    """LSTM hidden width."""
    lstm_layers: int = 2
    """Stacked LSTM layers."""


class LSTMActor(Actor):
    def __init__(self, obs_dim: int, nvec: Sequence[int], cfg: ARIQLConfig):
        super().__init__()
        self.nvec = tuple(int(m) for m in nvec)
        self.start_token = max(self.nvec)
        self.state_embed = nn.Sequential(nn.Linear(obs_dim, cfg.state_embed), nn.ReLU())
        self.action_embed = nn.Embedding(max(self.nvec) + 1, cfg.action_embed)
        self.lstm = nn.LSTM(cfg.state_embed + cfg.action_embed, cfg.lstm_hidden, cfg.lstm_layers, batch_first=True)
        self.heads = BatchedLinear(len(self.nvec), cfg.lstm_hidden, max(self.nvec))
        self.register_buffer("bin_padding", padding_mask(self.nvec), persistent=False)

    def _step_inputs(self, state: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """(B, T, in): the state embedding beside each previous sub-action's embedding."""
        return torch.cat([state.unsqueeze(1).expand(-1, previous.shape[1], -1), self.action_embed(previous)], -1)

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        state = self.state_embed(obs)
        start = torch.full_like(actions[:, :1], self.start_token)
        outputs, _ = self.lstm(self._step_inputs(state, torch.cat([start, actions[:, :-1]], 1)))
        logits = self.heads(outputs.transpose(0, 1)).transpose(0, 1).masked_fill(self.bin_padding, float("-inf"))
        return short_log_softmax(logits).gather(-1, actions.unsqueeze(-1)).squeeze(-1).sum(-1)

    def sample(self, obs: torch.Tensor, deterministic: bool, generator: Generators) -> torch.Tensor:
        state = self.state_embed(obs)
        previous = torch.full((obs.shape[0], 1), self.start_token, dtype=torch.long, device=obs.device)
        hidden, chosen = None, []
        for i in range(len(self.nvec)):  # sequential over dimensions, batched over observations
            output, hidden = self.lstm(self._step_inputs(state, previous), hidden)
            logits = self.heads.forward_one(i, output[:, 0]).masked_fill(self.bin_padding[i], float("-inf"))
            previous = sample_categorical(logits, deterministic, generator).unsqueeze(1)
            chosen.append(previous)
        return torch.cat(chosen, 1)


class ARIQLAgent(IQLAgent):
    name = "ar-iql"
    config: ARIQLConfig
    config_class = ARIQLConfig

    def build_actor(self) -> LSTMActor:
        return LSTMActor(self.obs_dim, self.nvec, self.config)
