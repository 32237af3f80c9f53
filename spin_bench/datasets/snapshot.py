"""A shipped behaviour snapshot (``datasets/checkpoints/<task>/bins<M>/*.pt``) as a rollout policy, without torch.

A snapshot is the zip file ``torch.save`` writes of ``{"format", "architecture", "state_dict", "metadata"}``.
:func:`read_snapshot` reads it with a restricted unpickler that knows only what such a file holds (dicts, lists,
numbers, strings and float tensors, rebuilt as numpy arrays), so building a dataset needs neither torch nor a pickle
that may run code. :class:`SnapshotPolicy` acts with the DecQN network in numpy float32, one observation at a time.

The datasets' definition: the greedy action maximises the float32 utilities computed this way (recorded in the
dataset metadata as :data:`NUMPY_EVALUATION`) by the BLAS kernels of the machine that recorded them. Summation order
differs between CPUs' kernels, so two machines can disagree only where two bins' utilities tie to within rounding;
given the recording kernels, :meth:`NumpyGreedy.__call__` recomputes such decisions exactly as those kernels do
(:mod:`spin_bench.datasets.kernels`). Exploration is :func:`epsilon_greedy`, whose random stream does not depend on
epsilon.
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from spin_bench.datasets.kernels import NEAR_TIE_GATE, check_kernels, local_kernels_cached, sgemv
from spin_bench.errors import SpinBenchError

SNAPSHOT_FORMAT = "spin-bench/decqn-snapshot-v1"
NUMPY_EVALUATION = "numpy-float32-batch1"

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class SnapshotError(SpinBenchError):
    """A file is not a readable spin-bench behaviour snapshot."""


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def epsilon_greedy(greedy: np.ndarray, nvec: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
    """Replace each sub-action of ``greedy`` (B, N) by a uniform bin with probability ``epsilon``.

    Exactly two draws of shape (B, N) from ``rng`` happen per call, whatever epsilon is, so the
    random stream (and a dataset built from it) does not depend on which branch was taken.
    """
    explore = rng.random(greedy.shape) < epsilon
    random_bins = np.floor(rng.random(greedy.shape) * nvec).astype(greedy.dtype)
    return np.where(explore, random_bins, greedy)


@dataclass(frozen=True)
class _StorageType:
    dtype: Any


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple, stride: tuple, *_: Any) -> np.ndarray:
    """``torch._utils._rebuild_tensor_v2`` for numpy: a copy of the strided view of ``storage``."""
    if not size:
        return storage[offset].copy()
    itemsize = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * itemsize for s in stride), writeable=False
    )
    return np.array(view)


class _SnapshotUnpickler(pickle.Unpickler):
    """Resolves only the names a weights-only tensor dict uses; storages come from the zip's ``data/`` entries."""

    def __init__(self, file, archive: zipfile.ZipFile, prefix: str):
        super().__init__(file)
        self.archive, self.prefix = archive, prefix

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        raise pickle.UnpicklingError(f"it references {module}.{name}, which a behaviour snapshot does not hold")

    def persistent_load(self, pid: Any) -> np.ndarray:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid
        data = self.archive.read(f"{self.prefix}data/{key}")
        return np.frombuffer(data, dtype=np.dtype(storage_type.dtype).newbyteorder("<"), count=numel)


def read_snapshot(path: str | Path) -> dict:
    """The snapshot in ``path`` as ``{"format", "architecture", "state_dict": {name: np.ndarray}, "metadata"}``."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
            if len(pickles) != 1:
                raise pickle.UnpicklingError("not a torch.save zip file")
            prefix = pickles[0][: -len("data.pkl")]
            byteorder = f"{prefix}byteorder"
            if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
                raise pickle.UnpicklingError("big-endian tensors")
            with archive.open(pickles[0]) as f:
                payload = _SnapshotUnpickler(f, archive, prefix).load()
    except (zipfile.BadZipFile, pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as err:
        raise SnapshotError(f"{path}: not a readable behaviour snapshot ({err})") from None
    if not isinstance(payload, dict) or payload.get("format") != SNAPSHOT_FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise SnapshotError(f"{path}: not a spin-bench behaviour snapshot (format={found!r})")
    return payload


class NumpyGreedy:
    """Greedy bin indices of a DecQN network's utilities, evaluated with numpy on one observation."""

    def __init__(
        self,
        layers: list[tuple],
        head: tuple[np.ndarray, np.ndarray],
        padding: np.ndarray,
        num_dims: int,
        kernels: str | None = None,
    ):
        self.layers = layers
        self.head = head
        self.padding = padding
        self.num_dims = num_dims
        self.dtype = head[0].dtype
        self.kernels = kernels
        """The recording kernels (:mod:`spin_bench.datasets.kernels`) near-ties are decided by; None: this CPU's."""
        self._head_abs = np.abs(head[0])
        self._weights64: list[np.ndarray] | None = None

    @classmethod
    def from_snapshot(cls, architecture: dict, state_dict: dict[str, np.ndarray]) -> NumpyGreedy:
        """The network ``DecoupledQNetwork(**architecture)`` with these weights: Linear, LayerNorm, ReLU layers."""
        if architecture.get("utility_basis"):
            raise SnapshotError("a snapshot with a utility basis must be folded before export (network.folded())")
        transform = architecture.get("observation_transform", "none")
        if transform not in ("none", "symlog"):
            raise SnapshotError(f"observation_transform={transform!r} is not supported")

        def arr(name: str) -> np.ndarray:
            return np.asarray(state_dict[name], dtype=np.float32)

        layers: list[tuple] = [("symlog",)] if transform == "symlog" else []
        index = 0
        for i, _ in enumerate(architecture["hidden"]):
            layers.append(("linear", np.ascontiguousarray(arr(f"torso.{index}.weight").T), arr(f"torso.{index}.bias")))
            index += 1
            if i == 0 or architecture.get("layer_norm", "first") == "all":
                layers.append(("layernorm", arr(f"torso.{index}.weight"), arr(f"torso.{index}.bias"), np.float32(1e-5)))
                index += 1
            layers.append(("relu",))
            index += 1
        nvec = np.asarray(architecture["nvec"], dtype=np.int64)
        padding = np.where(np.arange(nvec.max())[None, :] >= nvec[:, None], -np.inf, 0.0).astype(np.float32)
        head = (np.ascontiguousarray(arr("head.weight").T), arr("head.bias"))
        return cls(layers, head, padding, int(nvec.size))

    def astype(self, dtype) -> NumpyGreedy:
        """The same network evaluated in another precision (float64: the reference for rounding checks)."""
        cast = [tuple(v.astype(dtype) if isinstance(v, np.ndarray | np.floating) else v for v in layer)
                for layer in self.layers]  # fmt: skip
        head = (self.head[0].astype(dtype), self.head[1].astype(dtype))
        return NumpyGreedy(cast, head, self.padding.astype(dtype), self.num_dims)

    def with_kernels(self, kernels: str | None) -> NumpyGreedy:
        """The same network, deciding near-ties as the recording ``kernels`` do (see :meth:`__call__`)."""
        if kernels is not None:
            check_kernels(kernels)
        return NumpyGreedy(self.layers, self.head, self.padding, self.num_dims, kernels)

    def utilities(self, obs: np.ndarray) -> np.ndarray:
        """(B, N, bins) utilities from numpy's own matrix products (this CPU's BLAS kernels)."""
        return self._forward(obs, None)[1]

    def recorded_utilities(self, obs: np.ndarray) -> np.ndarray:
        """(B, N, bins) utilities bit for bit as the recording kernels compute them, on any CPU (slow: milliseconds)."""
        if self.kernels is None:
            raise ValueError("this network has no recording kernels (see with_kernels)")
        if self._weights64 is None:
            self._weights64 = [layer[1].astype(np.float64) for layer in self.layers if layer[0] == "linear"]
            self._weights64.append(self.head[0].astype(np.float64))
        rows = [self._forward(row[None], self._weights64)[1] for row in np.asarray(obs)]
        return np.concatenate(rows)

    def _forward(self, obs: np.ndarray, weights64: list[np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
        """(last hidden layer, utilities); ``weights64`` given: linear layers by :func:`kernels.sgemv` (batch 1)."""

        def linear(h: np.ndarray, w: np.ndarray, index: int) -> np.ndarray:
            if weights64 is None:
                return h @ w
            return sgemv(self.kernels, h[0], w, weights64[index])[None]

        h = np.asarray(obs, dtype=self.dtype)
        index = 0
        for layer in self.layers:
            kind = layer[0]
            if kind == "linear":
                h = linear(h, layer[1], index) + layer[2]
                index += 1
            elif kind == "layernorm":
                mean = h.mean(axis=-1, keepdims=True)
                centred = h - mean
                var = (centred * centred).mean(axis=-1, keepdims=True)
                h = centred / np.sqrt(var + layer[3]) * layer[1] + layer[2]
            elif kind == "symlog":
                h = np.sign(h) * np.log1p(np.abs(h))
            else:
                h = np.maximum(h, self.dtype.type(0.0))
        u = linear(h, self.head[0], index) + self.head[1]
        return h, u.reshape(len(h), self.num_dims, -1) + self.padding

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """Greedy bins (B, N); with recording kernels, a near-tie row is decided by :meth:`recorded_utilities`."""
        h, u = self._forward(obs, None)
        if self.kernels is not None and self.kernels != local_kernels_cached():  # same kernels: numpy's is exact
            near = self._near_ties(h, u)
            if near.any():
                u = u.copy()
                u[near] = self.recorded_utilities(np.asarray(obs)[near])
        return u.argmax(axis=-1)

    def _near_ties(self, h: np.ndarray, u: np.ndarray) -> np.ndarray:
        """(B,) rows where some dimension's two best utilities are within NEAR_TIE_GATE of twice its largest
        magnitude (``|h| @ |W| + |b|``, which bounds the magnitude of each of the two)."""
        magnitude = (np.abs(h) @ self._head_abs + np.abs(self.head[1])).reshape(u.shape)
        ordered = np.sort(u, axis=-1)
        with np.errstate(invalid="ignore"):  # a dimension with one bin: second best is -inf
            margin = ordered[..., -1] - ordered[..., -2]
            return (margin <= (2 * NEAR_TIE_GATE) * magnitude.max(axis=-1)).any(axis=-1)


@dataclass
class SnapshotPolicy:
    """``act(obs (B, S), epsilon, rng) -> (B, N)`` bin indices: epsilon-greedy on the numpy float32 forward pass."""

    greedy: NumpyGreedy
    nvec: np.ndarray
    metadata: dict
    evaluation: str = NUMPY_EVALUATION

    def act(self, observations: np.ndarray, epsilon: float, rng: np.random.Generator) -> np.ndarray:
        return epsilon_greedy(self.greedy(observations), self.nvec, epsilon, rng)


def load_snapshot_policy(path: str | Path, kernels: str | None = None) -> SnapshotPolicy:
    """The policy of the snapshot in ``path`` (read without torch; see :func:`read_snapshot`).

    ``kernels``: decide near-ties as these recording kernels do (:mod:`spin_bench.datasets.kernels`); None: as
    this CPU's numpy does.
    """
    payload = read_snapshot(path)
    architecture = payload["architecture"]
    try:
        greedy = NumpyGreedy.from_snapshot(architecture, payload["state_dict"]).with_kernels(kernels)
    except (KeyError, SnapshotError) as err:
        raise SnapshotError(f"{path}: cannot act with this snapshot ({err})") from None
    nvec = np.asarray(architecture["nvec"], dtype=np.int64)
    return SnapshotPolicy(greedy=greedy, nvec=nvec, metadata=dict(payload.get("metadata") or {}))
