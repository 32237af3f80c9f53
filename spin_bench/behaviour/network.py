"""DecQN's decoupled Q-network: one utility per (dimension, bin); Q(s, a) = mean_i U_i(s, a_i)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from spin_bench.behaviour.config import LAYER_NORMS, OBSERVATION_TRANSFORMS, check_choice


def symlog(x: torch.Tensor) -> torch.Tensor:
    """sign(x) * log(1 + |x|): about x near 0, logarithmic in the tails.

    Dog's foot-force, touch and accelerometer readings reach 8e4 while most of its 223 features are O(1).
    """
    return torch.sign(x) * torch.log1p(x.abs())


class DecoupledQNetwork(nn.Module):
    """MLP torso with a linear head of N x max_m utilities.

    ``layer_norm="first"`` puts a LayerNorm after the first hidden layer, ``"all"`` after every one.
    ``observation_transform="symlog"`` squashes observations with :func:`symlog` before the torso.

    Dimensions with fewer bins than ``max_m`` get -inf utilities on the missing bins, so an argmax
    never picks them and the padding never reaches a loss.
    """

    def __init__(
        self,
        obs_dim: int,
        nvec: Sequence[int],
        hidden: Sequence[int] = (256, 256),
        observation_transform: str = "none",
        layer_norm: str = "first",
    ):
        super().__init__()
        transform = check_choice("observation_transform", observation_transform, OBSERVATION_TRANSFORMS)
        self.observation_transform = transform
        self.layer_norm = check_choice("layer_norm", layer_norm, LAYER_NORMS)
        self.obs_dim = int(obs_dim)
        self.nvec = [int(m) for m in nvec]
        self.hidden = [int(h) for h in hidden]
        self.max_bins = max(self.nvec)
        layers: list[nn.Module] = []
        width = self.obs_dim
        for i, h in enumerate(self.hidden):
            layers.append(nn.Linear(width, h))
            if i == 0 or layer_norm == "all":
                layers.append(nn.LayerNorm(h))  # the first keeps unnormalized DMC observations well scaled
            layers.append(nn.ReLU())
            width = h
        self.torso = nn.Sequential(*layers)
        self.head = nn.Linear(width, len(self.nvec) * self.max_bins)
        missing = torch.arange(self.max_bins)[None, :] >= torch.tensor(self.nvec)[:, None]
        self.register_buffer("bin_padding", torch.where(missing, float("-inf"), 0.0), persistent=False)

    @property
    def num_dims(self) -> int:
        return len(self.nvec)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Utilities of shape ``(B, N, max_m)``."""
        if self.observation_transform == "symlog":
            obs = symlog(obs)
        utilities = self.head(self.torso(obs)).view(-1, self.num_dims, self.max_bins)
        return utilities + self.bin_padding

    def architecture(self) -> dict:
        """Constructor arguments, JSON- and ``weights_only``-safe."""
        architecture = {"obs_dim": self.obs_dim, "nvec": list(self.nvec), "hidden": list(self.hidden)}
        # Older snapshots have neither key, which means the defaults.
        if self.observation_transform != "none":
            architecture["observation_transform"] = self.observation_transform
        if self.layer_norm != "first":
            architecture["layer_norm"] = self.layer_norm
        return architecture
