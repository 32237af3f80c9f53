"""The discretization of a continuous box into per-dimension bins.

Sub-action ``k`` of dimension ``d`` means ``np.linspace(low[d], high[d], m[d])[k]``: the
endpoints are included, so 3 bins on [-1, 1] are exactly {-1, 0, 1}. (Gymnasium's own
``DiscretizeAction`` uses bin centres instead, {-2/3, 0, 2/3}; results are not comparable.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

BinsArg = int | Sequence[int]

BIN_BOUNDS: tuple[str, ...] = ("actuator", "unit")
"""Which interval the bins of each action dimension span. ``actuator``: the actuator's own control range (the
default). ``unit``: [-1, 1] for every actuator, the mapping of the original benchmark's loader (``dmc_datasets``),
where a value beyond an actuator's range is clamped to it by MuJoCo. They differ only where a range is not [-1, 1]
(quadruped: [-1, 1.1] and [-0.8, 0.8] actuators)."""


def bin_interval(low: np.ndarray, high: np.ndarray, bin_bounds: str) -> tuple[np.ndarray, np.ndarray]:
    """The ``(low, high)`` the bins span under ``bin_bounds`` (one of :data:`BIN_BOUNDS`), given the actuator range."""
    if bin_bounds == "actuator":
        return low, high
    if bin_bounds == "unit":
        return -np.ones_like(low, dtype=np.float64), np.ones_like(high, dtype=np.float64)
    raise ValueError(f"bin_bounds={bin_bounds!r} is not allowed; use one of {', '.join(BIN_BOUNDS)}")


def resolve_bins(bins: BinsArg, num_dims: int) -> np.ndarray:
    """Turn ``bins`` (one int, or one per dimension) into an int64 vector of length ``num_dims``."""
    if isinstance(bins, (bool, np.bool_)):
        raise ValueError(f"bins={bins!r} is not allowed; use an int >= 2 or one int >= 2 per dimension")
    if isinstance(bins, (int, np.integer)):
        counts = [int(bins)] * num_dims
    elif isinstance(bins, Sequence) or isinstance(bins, np.ndarray):
        counts = list(bins)
        if len(counts) != num_dims:
            raise ValueError(
                f"bins has {len(counts)} entries but the action has {num_dims} dimensions; "
                "give one int >= 2 or one per dimension"
            )
    else:
        raise ValueError(f"bins={bins!r} is not allowed; use an int >= 2 or one int >= 2 per dimension")
    for d, m in enumerate(counts):
        if isinstance(m, (bool, np.bool_)) or not isinstance(m, (int, np.integer)) or m < 2:
            raise ValueError(f"bins[{d}]={m!r} is not allowed; every dimension needs an int >= 2 bins")
    return np.asarray(counts, dtype=np.int64)


class ActionBins:
    """Maps bin indices to continuous actions and back, with strict input checks."""

    def __init__(self, low: np.ndarray, high: np.ndarray, bins: BinsArg):
        low = np.asarray(low, dtype=np.float64).ravel()
        high = np.asarray(high, dtype=np.float64).ravel()
        if low.shape != high.shape:
            raise ValueError(f"low has shape {low.shape} but high has shape {high.shape}")
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ValueError("cannot discretize an unbounded action space: every bound must be finite")
        self.low = low
        self.high = high
        self.nvec = resolve_bins(bins, low.size)
        self.values: tuple[np.ndarray, ...] = tuple(
            np.linspace(lo, hi, m) for lo, hi, m in zip(low, high, self.nvec, strict=True)
        )
        # Padded (N, max_m) table so a whole action is one fancy-indexing gather.
        self.table = np.full((low.size, int(self.nvec.max())), np.nan)
        for d, row in enumerate(self.values):
            self.table[d, : row.size] = row
        # Flat view + row offsets: a whole action is one take(), the hot path of every env step.
        self._flat_table = self.table.ravel()
        self._row_offsets = np.arange(low.size) * self.table.shape[1]
        self._nvec_unsigned = self.nvec.astype(np.uint64)

    @property
    def num_dims(self) -> int:
        return int(self.nvec.size)

    def check_indices(self, indices: object) -> np.ndarray:
        """Return ``indices`` as an int array after checking shape, dtype and range."""
        a = np.asarray(indices)
        if a.shape != (self.num_dims,):
            raise ValueError(
                f"action has shape {a.shape}; expected ({self.num_dims},) bin indices, one per action dimension"
            )
        if a.dtype.kind not in "iu":
            raise ValueError(
                f"action has dtype {a.dtype}; expected integer bin indices (got e.g. action[0]={a.flat[0]!r})"
            )
        # One comparison checks both ends: negative indices wrap to huge unsigned values.
        if not np.less(a.astype(np.uint64), self._nvec_unsigned).all():
            d = int(np.flatnonzero((a < 0) | (a >= self.nvec))[0])
            raise ValueError(
                f"action[{d}]={int(a[d])} is out of range for dimension {d}: "
                f"allowed bin indices are 0..{int(self.nvec[d]) - 1}"
            )
        return a

    def to_continuous(self, indices: object) -> np.ndarray:
        """Bin indices -> the continuous action (float64), after checking the indices."""
        return self._flat_table.take(self._row_offsets + self.check_indices(indices))

    def to_indices(self, action: object) -> np.ndarray:
        """Continuous action -> index of the nearest bin per dimension (int64)."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (self.num_dims,):
            raise ValueError(f"action has shape {a.shape}; expected ({self.num_dims},)")
        outside = np.flatnonzero((a < self.low) | (a > self.high))
        if outside.size:
            d = int(outside[0])
            raise ValueError(f"action[{d}]={a[d]!r} is outside dimension {d}'s bounds [{self.low[d]}, {self.high[d]}]")
        return np.nanargmin(np.abs(self.table - a[:, None]), axis=1)
