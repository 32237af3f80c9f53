"""The recording kernels: exact emulation of OpenBLAS's sgemv_n and short ddot, and greedy decisions made with them."""

from __future__ import annotations

import numpy as np
import pytest

from spin_bench.datasets import kernels as K
from spin_bench.datasets.snapshot import NumpyGreedy

F32 = np.float32
SHAPES = [(17, 256), (24, 256), (78, 256), (256, 256), (256, 18), (256, 15), (256, 36), (223, 512), (512, 114),
          (9, 256), (67, 512), (256, 6), (5, 7)]  # fmt: skip


def _libm(name: str, ctype):
    """The C library's ``fmaf`` or ``fma``: correctly rounded by the C standard, an oracle independent of numpy."""
    import ctypes
    import ctypes.util

    path = ctypes.util.find_library("m")
    if path is None:
        pytest.skip("no C math library to compare with")
    fn = getattr(ctypes.CDLL(path), name)
    fn.restype, fn.argtypes = ctype, [ctype] * 3
    return fn


def _libm_fmaf():
    import ctypes

    return _libm("fmaf", ctypes.c_float)


def test_fma32_rounds_once_where_float64_then_float32_would_round_twice():
    # (2^12 + 1) * (2^24 - 2^12 + 1) = 2^36 + 1, so a * x = 2^-24 + 2^-60: just above the float32 halfway point
    # between 1 and its successor. float64 drops the 2^-60, and float32 then rounds the exact halfway to even (1.0).
    a, x, acc = np.array([4097.0]), float(F32(16773121.0)) * 2.0**-60, np.array([1.0], F32)
    naive = (a * x + acc).astype(F32)
    assert naive[0] == F32(1.0)
    assert K.fma32(a, x, acc)[0] == np.nextafter(F32(1.0), F32(2.0))


def test_fma32_matches_the_c_librarys_fmaf_on_random_operands():
    rng = np.random.default_rng(0)
    a = (rng.standard_normal(2000) * 10.0 ** rng.integers(-3, 3, 2000)).astype(F32)
    acc = (rng.standard_normal(2000) * 10.0 ** rng.integers(-3, 3, 2000)).astype(F32)
    x = float(F32(rng.standard_normal()))
    got = K.fma32(a.astype(np.float64), x, acc)
    fmaf = _libm_fmaf()
    want = np.array([fmaf(float(ai), x, float(ci)) for ai, ci in zip(a, acc, strict=True)], F32)
    assert fmaf(4097.0, float(F32(16773121.0)) * 2.0**-60, 1.0) == np.nextafter(F32(1.0), F32(2.0))
    assert np.array_equal(got.view(np.int32), want.view(np.int32))


@pytest.mark.skipif(K.local_kernels() is None, reason="numpy here runs OpenBLAS kernels spin-bench does not emulate")
@pytest.mark.parametrize(("n", "m"), SHAPES)
def test_the_emulation_of_this_machines_kernels_is_bit_exact(n, m):
    rng = np.random.default_rng(n * 1000 + m)
    for _ in range(20):
        x = (rng.standard_normal(n) * rng.uniform(0.1, 3.0)).astype(F32)
        w = (rng.standard_normal((n, m)) / np.sqrt(n)).astype(F32)
        native = (x[None] @ w)[0]
        emulated = K.sgemv(K.local_kernels(), x, w, use_local=False)
        assert np.array_equal(emulated.view(np.int32), native.view(np.int32))


@pytest.mark.skipif(K.local_kernels() is None, reason="numpy here runs OpenBLAS kernels spin-bench does not emulate")
@pytest.mark.parametrize(("n", "m"), SHAPES)
def test_the_other_kernels_from_this_machines_blocks_equal_their_full_emulation(n, m):
    other = K.SKYLAKEX if K.local_kernels() == K.HASWELL else K.HASWELL
    rng = np.random.default_rng(n * 1000 + m + 1)
    for _ in range(10):
        x = (rng.standard_normal(n) * rng.uniform(0.1, 3.0)).astype(F32)
        w = (rng.standard_normal((n, m)) / np.sqrt(n)).astype(F32)
        fast, full = K.sgemv(other, x, w), K.sgemv(other, x, w, use_local=False)
        assert np.array_equal(fast.view(np.int32), full.view(np.int32))


def test_haswell_and_skylakex_kernels_sum_differently():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(17).astype(F32)
    w = rng.standard_normal((17, 256)).astype(F32)
    assert not np.array_equal(K.sgemv(K.HASWELL, x, w, use_local=False), K.sgemv(K.SKYLAKEX, x, w, use_local=False))


def _tie_network(rng) -> NumpyGreedy:
    """17 inputs, 64 hidden units, 2 dimensions x 3 bins whose bins 0 and 1 tie to within float32 rounding."""
    w1, b1 = rng.standard_normal((17, 64)).astype(F32), np.zeros(64, F32)
    head = rng.standard_normal((64, 6)).astype(F32)
    head[:, 1] = head[:, 0] * F32(1 + 2e-7)
    head[:, 4] = head[:, 3] * F32(1 - 2e-7)
    return NumpyGreedy([("linear", w1, b1), ("relu",)], (head, np.zeros(6, F32)), np.zeros((2, 3), F32), 2)


def test_a_near_tie_is_decided_as_the_recording_kernels_decide_it_whatever_this_cpu_computes():
    rng = np.random.default_rng(2)
    net = _tie_network(rng)
    haswell, skylakex = net.with_kernels(K.HASWELL), net.with_kernels(K.SKYLAKEX)
    found = 0
    for _ in range(300):
        obs = rng.standard_normal((1, 17)).astype(F32)
        by_haswell = haswell.recorded_utilities(obs).argmax(-1)
        by_skylakex = skylakex.recorded_utilities(obs).argmax(-1)
        if np.array_equal(by_haswell, by_skylakex):
            continue
        found += 1
        assert np.array_equal(haswell(obs), by_haswell)
        assert np.array_equal(skylakex(obs), by_skylakex)
    assert found >= 3  # the network is built so that the two kernels disagree now and then


def test_far_from_a_tie_the_greedy_action_is_numpys_own():
    rng = np.random.default_rng(3)
    w1 = rng.standard_normal((17, 64)).astype(F32)
    head = rng.standard_normal((64, 6)).astype(F32)
    layers = [("linear", w1, np.zeros(64, F32)), ("relu",)]
    net = NumpyGreedy(layers, (head, np.zeros(6, F32)), np.zeros((2, 3), F32), 2)
    obs = rng.standard_normal((50, 17)).astype(F32)
    skylakex = net.with_kernels(K.SKYLAKEX)
    assert np.array_equal(skylakex(obs), net.utilities(obs).argmax(-1))
    h, u = skylakex._forward(obs, None)
    assert skylakex._near_ties(h, u).sum() <= 1  # the exact path is the exception


def test_recording_norm_reproduces_each_kernels_short_ddot():
    import ctypes

    fma = _libm("fma", ctypes.c_double)
    rng = np.random.default_rng(4)
    differ = 0
    for _ in range(200):
        v = rng.standard_normal(4)
        fused = 0.0
        for e in v.tolist():
            fused = fma(e, e, fused)
        assert K.ddot_self(K.SKYLAKEX, v) == fused
        assert K.ddot_self(K.HASWELL, v) == ((v[0] * v[0] + v[1] * v[1]) + v[2] * v[2]) + v[3] * v[3]
        if K.local_kernels() == K.HASWELL:
            assert K.ddot_self(K.HASWELL, v) == float(v @ v)
        with K.recording_norm(K.SKYLAKEX):
            assert np.linalg.norm(v) == np.sqrt(fused)
            assert np.linalg.norm(np.ones(20)) == pytest.approx(np.sqrt(20.0))  # longer vectors: numpy's own
        differ += K.ddot_self(K.SKYLAKEX, v) != K.ddot_self(K.HASWELL, v)
    assert differ > 0
    assert np.linalg.norm.__module__.startswith("numpy")  # restored after the block


def test_unknown_kernels_are_refused_by_name():
    with pytest.raises(ValueError, match="'openblas-zen5'.*openblas-haswell, openblas-skylakex"):
        NumpyGreedy([], (np.zeros((2, 2), F32), np.zeros(2, F32)), np.zeros((1, 2), F32), 1).with_kernels(
            "openblas-zen5"
        )


def test_the_catalog_names_the_recording_kernels_and_info_shows_them():
    from typer.testing import CliRunner

    from spin_bench.cli.datasets import app as datasets_app
    from spin_bench.datasets.catalog import load_catalog

    catalog = load_catalog()
    assert catalog.task_entry("quadruped-walk", 3).recording_kernels == K.SKYLAKEX
    assert catalog.task_entry("dog-trot", 30).recording_kernels == K.HASWELL
    result = CliRunner().invoke(datasets_app, ["info", "spin/quadruped-walk/medium-expert-v0", "--offline"])
    assert result.exit_code == 0, result.output
    assert "openblas-skylakex" in result.output
