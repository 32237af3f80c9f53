"""Acting with a behaviour snapshot during dataset rollouts: the DecQN forward pass in numpy, batch size 1.

Between two MuJoCo steps, a batch-1 torch forward pass of a 256-256 DecQN network costs about 0.7 ms on a busy
2-core machine (dispatcher and cache misses, not arithmetic); the same float32 arithmetic in numpy costs about
0.2 ms, which is what keeps a dog build close to raw simulation speed. :func:`rollout_policy` uses the numpy
forward when the network is made of Linear / LayerNorm / ReLU layers (after an optional symlog of the observation)
and its utilities agree with torch's on probe inputs (otherwise it acts through torch, ``BehaviourPolicy.greedy``).
Exploration is the behaviour package's own ``epsilon_greedy``, so the random stream is the one
``BehaviourPolicy.act`` draws.

The datasets' definition: the greedy action maximises the float32 utilities computed this way. Floating-point
summation order differs from torch's, so the two can disagree only where two bins' utilities tie to within
rounding; ``datasets/catalog.json`` and the dataset metadata record which evaluation was used.
"""

from __future__ import annotations

import numpy as np

from spin_bench.behaviour.policy import BehaviourPolicy, epsilon_greedy

NUMPY_EVALUATION = "numpy-float32-batch1"
TORCH_EVALUATION = "torch-float32-batch1"


class NumpyGreedy:
    """Greedy bin indices of a ``DecoupledQNetwork``'s utilities, evaluated with numpy on one observation."""

    def __init__(self, layers: list[tuple], head: tuple[np.ndarray, np.ndarray], padding: np.ndarray, num_dims: int):
        self.layers = layers
        self.head = head
        self.padding = padding
        self.num_dims = num_dims
        self.dtype = head[0].dtype

    def astype(self, dtype) -> NumpyGreedy:
        """The same network evaluated in another precision (float64: the reference for rounding checks)."""
        cast = [tuple(v.astype(dtype) if isinstance(v, np.ndarray | np.floating) else v for v in layer)
                for layer in self.layers]  # fmt: skip
        head = (self.head[0].astype(dtype), self.head[1].astype(dtype))
        return NumpyGreedy(cast, head, self.padding.astype(dtype), self.num_dims)

    @classmethod
    def from_network(cls, network) -> NumpyGreedy | None:
        """Convert a network; None when a layer is not supported or the result disagrees with torch."""
        import torch
        from torch import nn

        def arr(t) -> np.ndarray:
            return t.detach().cpu().numpy().astype(np.float32)

        layers: list[tuple] = []
        transform = getattr(network, "observation_transform", "none")
        if transform == "symlog":
            layers.append(("symlog",))
        elif transform != "none":
            return None
        for module in network.torso:
            if isinstance(module, nn.Linear):
                layers.append(("linear", np.ascontiguousarray(arr(module.weight).T), arr(module.bias)))
            elif isinstance(module, nn.LayerNorm) and module.elementwise_affine and len(module.normalized_shape) == 1:
                layers.append(("layernorm", arr(module.weight), arr(module.bias), np.float32(module.eps)))
            elif isinstance(module, nn.ReLU):
                layers.append(("relu",))
            else:
                return None
        if not isinstance(network.head, nn.Linear):
            return None
        head = (np.ascontiguousarray(arr(network.head.weight).T), arr(network.head.bias))
        padding = arr(network.bin_padding)
        converted = cls(layers, head, padding, network.num_dims)
        probe = np.random.default_rng(0).standard_normal((64, network.obs_dim)).astype(np.float32) * 5
        with torch.no_grad():
            expected = network(torch.from_numpy(probe)).numpy()
        got = np.concatenate([converted.utilities(row[None]) for row in probe])
        finite = np.isfinite(expected)
        if not (np.array_equal(finite, np.isfinite(got)) and np.allclose(got[finite], expected[finite], 1e-4, 1e-4)):
            return None
        return converted

    def utilities(self, obs: np.ndarray) -> np.ndarray:
        h = np.asarray(obs, dtype=self.dtype)
        for layer in self.layers:
            kind = layer[0]
            if kind == "linear":
                h = h @ layer[1] + layer[2]
            elif kind == "layernorm":
                mean = h.mean(axis=-1, keepdims=True)
                centred = h - mean
                var = (centred * centred).mean(axis=-1, keepdims=True)
                h = centred / np.sqrt(var + layer[3]) * layer[1] + layer[2]
            elif kind == "symlog":
                h = np.sign(h) * np.log1p(np.abs(h))
            else:
                h = np.maximum(h, self.dtype.type(0.0))
        u = h @ self.head[0] + self.head[1]
        return u.reshape(len(h), self.num_dims, -1) + self.padding

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.utilities(obs).argmax(axis=-1)


class RolloutPolicy:
    """``act(obs (1, S), epsilon, rng) -> (1, N)``, like ``BehaviourPolicy.act``, with the numpy forward if possible."""

    def __init__(self, policy: BehaviourPolicy):
        self.nvec = policy.nvec
        fast = NumpyGreedy.from_network(policy.network)
        self.greedy = fast if fast is not None else policy.greedy
        self.evaluation = NUMPY_EVALUATION if fast is not None else TORCH_EVALUATION

    def act(self, observations: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
        return epsilon_greedy(self.greedy(observations), self.nvec, epsilon, rng)


def rollout_policy(policy: BehaviourPolicy) -> RolloutPolicy:
    return RolloutPolicy(policy)
