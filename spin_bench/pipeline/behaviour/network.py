"""DecQN's decoupled Q-network: one utility per (dimension, bin); Q(s, a) = mean_i U_i(s, a_i)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from spin_bench.pipeline.behaviour.config import LAYER_NORMS, OBSERVATION_TRANSFORMS, check_choice


def symlog(x: torch.Tensor) -> torch.Tensor:
    """sign(x) * log(1 + |x|): about x near 0, logarithmic in the tails.

    Dog's foot-force, touch and accelerometer readings reach 8e4 while most of its 223 features are O(1).
    """
    return torch.sign(x) * torch.log1p(x.abs())


def legendre_basis(bins: int, degree_count: int) -> torch.Tensor:
    """Legendre polynomials P_0 .. P_{K-1} at the bins' action values linspace(-1, 1, bins): shape (K, bins)."""
    x = torch.linspace(-1.0, 1.0, bins, dtype=torch.float64)
    rows = [torch.ones_like(x), x]
    for n in range(1, degree_count - 1):  # (n + 1) P_{n+1} = (2n + 1) x P_n - n P_{n-1}
        rows.append(((2 * n + 1) * x * rows[n] - n * rows[n - 1]) / (n + 1))
    return torch.stack(rows[:degree_count]).float()


def check_utility_basis(utility_basis: int, nvec: Sequence[int]) -> None:
    """Raise ValueError unless ``utility_basis`` (0: free utilities) suits these bins per dimension."""
    if not utility_basis:
        return
    max_bins = max(nvec)
    if utility_basis < 2 or utility_basis >= max_bins:
        raise ValueError(f"utility_basis={utility_basis} must be 0 or in [2, {max_bins - 1}] for {max_bins} bins")
    if len(set(nvec)) != 1:
        raise ValueError(f"utility_basis needs the same bins in every dimension, not {sorted(set(nvec))}")


def utility_coefficients(
    head_weight: torch.Tensor, head_bias: torch.Tensor, num_dims: int, basis: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The basis coefficients of a plain head's utilities: weights ``(N, K, hidden)`` and biases ``(N, K)`` with
    ``plain = coefficients @ basis`` (least squares in float64, exact for utilities of degree K - 1 over the bins).

    ``basis``: ``(K, bins)``, the bins of the plain head. Utilities the basis cannot express are a ValueError.
    """
    basis = basis.double()
    degree_count, bins = basis.shape
    solve = torch.linalg.pinv(basis)  # (bins, K)
    weight = head_weight.detach().double().view(num_dims, bins, -1)
    bias = head_bias.detach().double().view(num_dims, bins)
    coefficients = torch.einsum("nmh,mk->nkh", weight, solve)
    residual = (torch.einsum("nkh,km->nmh", coefficients, basis) - weight).abs().max()
    if residual > 1e-4 * weight.abs().max().clamp_min(1e-12):
        relative = float(residual / weight.abs().max())
        raise ValueError(
            f"these utilities are not of degree {degree_count - 1} over the bins (relative residual "
            f"{relative:.2g}): not the weights of a utility_basis={degree_count} network"
        )
    return coefficients.float(), (bias @ solve).float()


class DecoupledQNetwork(nn.Module):
    """MLP torso with a linear head of N x max_m utilities.

    ``layer_norm="first"`` puts a LayerNorm after the first hidden layer, ``"all"`` after every one.
    ``observation_transform="symlog"`` squashes observations with :func:`symlog` before the torso.

    Dimensions with fewer bins than ``max_m`` get -inf utilities on the missing bins, so an argmax
    never picks them and the padding never reaches a loss.

    ``utility_basis=K`` (K < bins, every dimension with the same bins): the head gives K Legendre coefficients per
    dimension and the utilities are that polynomial at the bins' action values. :meth:`folded` returns the same
    function as an ordinary network (``utility_basis=0``), which is what workers and snapshots get.
    """

    def __init__(
        self,
        obs_dim: int,
        nvec: Sequence[int],
        hidden: Sequence[int] = (256, 256),
        observation_transform: str = "none",
        layer_norm: str = "first",
        utility_basis: int = 0,
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
        self.utility_basis = int(utility_basis)
        check_utility_basis(self.utility_basis, self.nvec)
        if self.utility_basis:
            self.register_buffer("basis", legendre_basis(self.max_bins, self.utility_basis), persistent=False)
        self.head = nn.Linear(width, len(self.nvec) * (self.utility_basis or self.max_bins))
        missing = torch.arange(self.max_bins)[None, :] >= torch.tensor(self.nvec)[:, None]
        self.register_buffer("bin_padding", torch.where(missing, float("-inf"), 0.0), persistent=False)

    @property
    def num_dims(self) -> int:
        return len(self.nvec)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Utilities of shape ``(B, N, max_m)``."""
        if self.observation_transform == "symlog":
            obs = symlog(obs)
        out = self.head(self.torso(obs))
        if self.utility_basis:
            return out.view(-1, self.num_dims, self.utility_basis) @ self.basis + self.bin_padding
        return out.view(-1, self.num_dims, self.max_bins) + self.bin_padding

    def folded(self) -> DecoupledQNetwork:
        """The same utilities from an ordinary network (``utility_basis=0``); itself when it has no basis."""
        if not self.utility_basis:
            return self
        plain = DecoupledQNetwork(self.obs_dim, self.nvec, self.hidden, self.observation_transform, self.layer_norm)
        return self.fold_into(plain.to(self.head.weight.device))

    def fold_into(self, plain: DecoupledQNetwork) -> DecoupledQNetwork:
        """Overwrite ``plain`` (same architecture, no basis) with this network's function: the torso copied, the
        basis folded into the head's weights (float64 product). Reusing one ``plain`` spares a fresh network's
        random initialisation each time the learner hands its weights out."""
        plain.torso.load_state_dict(self.torso.state_dict())
        basis = self.basis.double()
        weight = self.head.weight.detach().double().view(self.num_dims, self.utility_basis, -1)
        bias = self.head.bias.detach().double().view(self.num_dims, self.utility_basis)
        with torch.no_grad():
            plain.head.weight.copy_(torch.einsum("nkh,km->nmh", weight, basis).reshape(-1, weight.shape[-1]))
            plain.head.bias.copy_((bias @ basis).reshape(-1))
        return plain

    def load_plain_state_dict(self, state_dict: dict[str, torch.Tensor]) -> None:
        """Load a plain network's weights (a snapshot's, same architecture but the basis). With a utility basis the
        head's coefficients are solved for by least squares, exact for a snapshot folded from such a network; a head
        the basis cannot express (a free-utility snapshot) is a ValueError."""
        if not self.utility_basis:
            self.load_state_dict(state_dict)
            return
        self.torso.load_state_dict(
            {k.removeprefix("torso."): v for k, v in state_dict.items() if k.startswith("torso.")}
        )
        coefficients, coefficient_bias = utility_coefficients(
            state_dict["head.weight"], state_dict["head.bias"], self.num_dims, self.basis
        )
        with torch.no_grad():
            self.head.weight.copy_(coefficients.reshape(-1, coefficients.shape[-1]))
            self.head.bias.copy_(coefficient_bias.reshape(-1))

    def architecture(self) -> dict:
        """Constructor arguments, JSON- and ``weights_only``-safe."""
        architecture = {"obs_dim": self.obs_dim, "nvec": list(self.nvec), "hidden": list(self.hidden)}
        # Older snapshots have neither key, which means the defaults.
        if self.observation_transform != "none":
            architecture["observation_transform"] = self.observation_transform
        if self.layer_norm != "first":
            architecture["layer_norm"] = self.layer_norm
        if self.utility_basis:
            architecture["utility_basis"] = self.utility_basis
        return architecture
