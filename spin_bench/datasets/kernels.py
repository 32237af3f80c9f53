"""The arithmetic that recorded a dataset, reproduced exactly on any CPU.

A rollout's greedy action is the argmax of float32 utilities computed by numpy, whose matrix-vector products go to
OpenBLAS. OpenBLAS picks its kernels by CPU: an AVX-512 machine runs the ``SKYLAKEX`` kernels, an AVX2 machine the
``HASWELL`` ones, and the two sum in different orders (and fuse multiply-adds in different places). The last bits
of the utilities therefore depend on the CPU, and where two bins tie that closely the greedy action does too. The
same holds for ``np.linalg.norm`` (a ``ddot``), which dm_control calls to normalise random initial orientations
(fish, quadruped, and the free joints of the randomizers): one last bit there, and the episode starts elsewhere.

Each catalog entry names the kernels its datasets were recorded with (``recording_kernels``). Rollouts then:

- evaluate the network with the local BLAS (fast) and, where the two best bins of any action dimension are closer
  than :data:`NEAR_TIE_GATE` times their magnitude, recompute the utilities with :func:`sgemv`, an exact
  emulation of the recording kernels in numpy float32/float64 arithmetic, and act on those;
- compute ``np.linalg.norm`` of short float64 vectors as the recording kernels' ``ddot`` does
  (:func:`recording_norm`).

Both emulations follow OpenBLAS 0.3.31 (``kernel/x86_64/sgemv_n_4.c`` with its Haswell and SkylakeX micro-kernels,
``ddot.c``): numpy's ``x @ W`` for a (1, n) float32 row and a C-contiguous (n, m) matrix is ``sgemv_n`` on the
column-major (m, n) matrix. Every emulated operation is a correctly rounded IEEE operation, so the result is the same
on every CPU numpy runs on. Not emulated: the ``symlog`` observation transform's ``np.log1p``, which numpy computes
with Intel's SVML on AVX-512 machines (no shipped behaviour snapshot uses it), and float64 arithmetic inside
dm_control's observations and rewards other than short norms (see ``docs/datasets.md``).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from fractions import Fraction

import numpy as np

HASWELL = "openblas-haswell"
SKYLAKEX = "openblas-skylakex"
RECORDING_KERNELS = (HASWELL, SKYLAKEX)
"""The kernels a catalog entry's ``recording_kernels`` may name."""

NEAR_TIE_GATE = 1e-5
"""A greedy decision is recomputed exactly when its two best utilities are closer than this times twice the
largest magnitude (``|h| @ |W| + |b|`` of the output layer) among the dimension's bins. Two float32 evaluations of
these networks differ by at most about 5e-7 of that magnitude (measured between the Haswell and SkylakeX kernels
on cheetah and quadruped episodes), so the gate leaves a factor of 20 or more."""

_F32, _F64 = np.float32, np.float64
_LOW29 = (1 << 29) - 1
_HALF29 = 1 << 28


def check_kernels(kernels: str) -> str:
    """``kernels`` if it is one of :data:`RECORDING_KERNELS`; a ValueError naming it otherwise."""
    if kernels not in RECORDING_KERNELS:
        raise ValueError(f"recording kernels {kernels!r} are not emulated; known: {', '.join(RECORDING_KERNELS)}")
    return kernels


def _fma32_exact(a: float, x: float, acc: float) -> np.float32:
    """``fmaf(a, x, acc)`` from exact rationals (``float(Fraction)`` rounds correctly, then float32 rounds once)."""
    exact = Fraction(float(a)) * Fraction(float(x)) + Fraction(float(acc))
    return _round_fraction_to_f32(exact)


def _round_fraction_to_f32(v: Fraction) -> np.float32:
    """Round an exact rational to the nearest float32 (ties to even)."""
    if v == 0:
        return _F32(0.0)
    lo = _F32(float(v))  # float64 rounding first; fixed below where it lands on a float32 halfway point
    up = np.nextafter(lo, _F32(np.inf))
    down = np.nextafter(lo, _F32(-np.inf))
    best = min((lo, up, down), key=lambda c: (abs(Fraction(float(c)) - v), int(np.array(c).view(np.int32)) & 1))
    return _F32(best)


def fma32(a64: np.ndarray, x: float, acc: np.ndarray) -> np.ndarray:
    """Elementwise ``fmaf(a, x, acc)`` in float32: one rounding of the exact ``a * x + acc``.

    ``a64`` holds float32 values as float64 (so ``a * x`` is exact: 24 + 24 bits); ``acc`` is float32. The float64 sum
    rounds once; rounding that to float32 is the single rounding except where the float64 sum sits exactly halfway
    between two float32 values, which is redone with exact rationals.
    """
    s = a64 * _F64(x) + acc
    r = s.astype(_F32)
    halfway = (s.view(np.int64) & _LOW29) == _HALF29
    if halfway.any():
        for i in np.flatnonzero(halfway):
            r[i] = _fma32_exact(a64[i], x, acc[i])
    return r


def _columns_block(y, a64, x, cols, two_chain_rows):
    """The Haswell ``sgemv_kernel_4x8`` / ``4x4`` micro-kernel on columns ``cols`` (SkylakeX uses the same code).

    Rows in blocks of 16 keep one fused chain over the columns and add it to ``y`` in one fused step; the first
    ``NB % 16`` rows keep two chains (even and odd columns), added together and then to ``y``.
    """
    r = two_chain_rows
    if r:
        even, odd = np.zeros(r, _F32), np.zeros(r, _F32)
        for k, j in enumerate(cols):
            if k % 2 == 0:
                even = fma32(a64[j, :r], x[j], even)
            else:
                odd = fma32(a64[j, :r], x[j], odd)
        y[:r] = (odd + even) + y[:r]
    acc = np.zeros(y.size - r, _F32)
    for j in cols:
        acc = fma32(a64[j, r:], x[j], acc)
    y[r:] = acc + y[r:]


def _small_path(kernels: str, n: int, m: int) -> bool:
    """SkylakeX's ``sgemv_kernel_n_128``: one fused chain per row over every column (few columns)."""
    return kernels == SKYLAKEX and n <= 48 and n != 4 and m <= 16384


def sgemv(
    kernels: str, x: np.ndarray, w: np.ndarray, w64: np.ndarray | None = None, *, use_local: bool = True
) -> np.ndarray:
    """``x @ w`` (x: (n,) float32, w: (n, m) float32) exactly as OpenBLAS's ``sgemv_n`` of ``kernels`` computes it.

    Where this machine's numpy runs the same kernels, that is numpy's own product; where it runs the other of
    :data:`RECORDING_KERNELS`, the column blocks both compute alike come from numpy and the rest is emulated; on
    any other machine everything is emulated (milliseconds). ``w64``: ``w`` as float64, if the caller keeps one.
    ``use_local=False`` emulates everything here too.
    """
    check_kernels(kernels)
    x = np.asarray(x, _F32)
    w = np.asarray(w, _F32)
    n, m = w.shape
    if m > 4096:
        raise ValueError(f"a layer of {m} outputs: the emulation covers up to 4096 (OpenBLAS's NBMAX)")
    local = local_kernels_cached() if use_local else None
    if local == kernels:
        return (x[None] @ w)[0]
    a64 = w.astype(_F64) if w64 is None else w64
    if _small_path(kernels, n, m):
        acc = np.zeros(m, _F32)
        for j in range(n):
            acc = fma32(a64[j], x[j], acc)
        return acc + np.zeros(m, _F32)  # the kernel adds the chain to y = +0
    m3 = m & 3
    m2 = m - m3
    blocks = n - (n & 3)  # columns in 8- and 4-wide blocks: the Haswell micro-kernels, in both builds
    if local in RECORDING_KERNELS and not _small_path(local, blocks, m) and not _small_path(local, n, m):
        y = (x[None, :blocks] @ w[:blocks])[0][:m2].copy() if blocks else np.zeros(m2, _F32)
    else:
        y = np.zeros(m2, _F32)
        two_chain = m2 % 16
        for j in range(0, blocks - (n & 4), 8):
            _columns_block(y, a64[:, :m2], x, range(j, j + 8), two_chain)
        if n & 4:
            _columns_block(y, a64[:, :m2], x, range(blocks - 4, blocks), two_chain)
    j = blocks
    if n & 2:
        p0 = w[j, :m2] * x[j]
        if kernels == SKYLAKEX:  # sgemv_kernel_n_64: a fused pair, then one add
            y = fma32(a64[j + 1, :m2], x[j + 1], p0) + y
        else:  # sgemv_kernel_4x2 (SSE): two products, two adds
            y = (y + p0) + w[j + 1, :m2] * x[j + 1]
        j += 2
    if n & 1:
        y = w[j, :m2] * x[j] + y
    out = np.empty(m, _F32)
    out[:m2] = y
    if m3:
        out[m2:] = _tail_rows(kernels, a64[:, m2:], x)
    return out


def _tail_rows(kernels: str, a64: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The last ``m % 4`` rows (``a64``: their float32 weights as float64): plain C loops ``temp += a * x``, fused
    by the SkylakeX build's compiler."""
    products = (a64 * x.astype(_F64)[:, None]).T.tolist()  # exact float32 x float32 products
    out = np.empty(a64.shape[1], _F32)
    for i, row in enumerate(products):
        t = 0.0
        for p in row:
            if kernels == SKYLAKEX:
                t = _round_f32_once(p + t, p, t)
            else:
                t = float(_F32(t + float(_F32(p))))
        out[i] = t
    return out


def _round_f32_once(s: float, p: float, t: float) -> float:
    """``float32(p + t)`` rounded once, given ``s``, their float64 sum (exact products: see :func:`fma32`)."""
    r = float(_F32(s))
    if (_F64(s).view(np.int64) & _LOW29) == _HALF29:  # halfway between two float32: the float64 sum rounded
        return float(_round_fraction_to_f32(Fraction(p) + Fraction(t)))
    return r


def ddot_self(kernels: str, x: np.ndarray) -> float:
    """``x . x`` for a float64 vector shorter than 16, as ``ddot`` of ``kernels`` computes it.

    Below 16 elements OpenBLAS's ``ddot`` runs only its C tail loop ``dot += y[i] * x[i]``: two roundings per element
    in the Haswell build, one fused multiply-add in the SkylakeX build.
    """
    check_kernels(kernels)
    dot = 0.0
    for v in np.asarray(x, _F64).tolist():
        if kernels == SKYLAKEX:
            dot = float(Fraction(v) * Fraction(v) + Fraction(dot))
        else:
            dot = dot + v * v
    return dot


_SHORT_DOT = 16


@contextlib.contextmanager
def recording_norm(kernels: str | None) -> Iterator[None]:
    """Within the block, ``np.linalg.norm(v)`` of a 1-D float64 vector shorter than 16 uses :func:`ddot_self`.

    Every other call (longer vectors, other dtypes, ``ord`` or ``axis`` given) goes to numpy unchanged. ``None``:
    no change at all.
    """
    if kernels is None:
        yield
        return
    check_kernels(kernels)
    original = np.linalg.norm

    def norm(x, *args, **kwargs):
        v = np.asarray(x)
        if not args and not kwargs and v.ndim == 1 and v.dtype == _F64 and v.size < _SHORT_DOT:
            return _F64(np.sqrt(ddot_self(kernels, v)))
        return original(x, *args, **kwargs)

    np.linalg.norm = norm
    try:
        yield
    finally:
        np.linalg.norm = original


def local_openblas_core() -> str | None:
    """The name of the OpenBLAS core numpy runs on here (e.g. ``"Haswell"``, ``"SkylakeX"``), None if unknown."""
    import ctypes
    import glob
    import os

    libs_dir = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in sorted(glob.glob(os.path.join(libs_dir, "*openblas*"))):
        lib = ctypes.CDLL(path)
        for name in ("scipy_openblas_get_corename64_", "scipy_openblas_get_corename", "openblas_get_corename"):
            fn = getattr(lib, name, None)
            if fn is not None:
                fn.restype = ctypes.c_char_p
                return fn().decode()
    return None


_CORE_KERNELS = {"haswell": HASWELL, "zen": HASWELL, "skylakex": SKYLAKEX, "cooperlake": SKYLAKEX}


def local_kernels() -> str | None:
    """The :data:`RECORDING_KERNELS` name of this machine's numpy, None where it runs other kernels."""
    core = local_openblas_core()
    return None if core is None else _CORE_KERNELS.get(core.lower())


@functools.cache
def local_kernels_cached() -> str | None:
    """:func:`local_kernels`, looked up once per process."""
    return local_kernels()
