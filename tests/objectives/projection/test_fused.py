"""mmib.objectives.projection.fused: the torch.compile kernel of the OVA-IB projection score (kernel="inductor";
"compiled" where numba does not run), its one-warning fallback to the eager kernel, and the small helpers (upper_to_full, run, mark_failed)."""

import os
import shutil
import warnings

import objectives_reference as ref
import pytest
import torch
from objectives_reference import assert_matches

import mmib.objectives.projection.fused as fused
from mmib.objectives import OVAIBLoss
from mmib.objectives.ova_ib import projection_score_from_gram, rowwise_gram

HAS_CXX = shutil.which(os.environ.get("CXX", "g++")) is not None


def _named(zs):
    return {f"m{i}": z for i, z in enumerate(zs)}


@pytest.mark.skipif(not HAS_CXX, reason="torch.compile needs a C++ compiler")
def test_compiled_kernel_matches_the_float64_loop_reference():
    # loss (all anchors in one call) and the retrieval score (one anchor): values and gradients against the
    # explicit-projection loop reference; a zero embedding (clamped norms) as the eager kernel; no fallback warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        zs = [torch.randn(6, 5, dtype=torch.float64, requires_grad=True) for _ in range(3)]
        out = OVAIBLoss(temperature=0.2, beta=0.3, ridge=1e-3, kernel="inductor")(_named(zs))
        total, _, _ = ref.ova_ib_loss(zs, 0.2, 0.3, ridge=1e-3)
        assert_matches(out.loss, total, zs, rtol=1e-7, atol=1e-9)

        with torch.no_grad():
            zs[1][2] = 0.0
        kw = {"temperature": 0.2, "beta": 0.3, "ridge": 1e-3}
        compiled = OVAIBLoss(**kw, kernel="inductor")(_named(zs)).loss
        assert torch.isfinite(compiled)
        assert_matches(compiled, OVAIBLoss(**kw)(_named(zs)).loss, zs, rtol=1e-9, atol=1e-9)

        a = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
        t = [torch.randn(5, 3, dtype=torch.float64, requires_grad=True) for _ in range(2)]

        def f(a, t0, t1):
            cross = [a @ t0.T, a @ t1.T]
            return projection_score_from_gram(cross, rowwise_gram([t0, t1]), (a * a).sum(-1), 0.7, "inductor")

        assert torch.autograd.gradcheck(f, (a, *t))
    assert not fused._FAILED


def test_failed_compilation_warns_once_and_falls_back_to_eager(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(fused, "_FAILED", [])
    monkeypatch.setattr(fused, "compiled", lambda name: broken)
    zs = [torch.randn(5, 4, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    with pytest.warns(RuntimeWarning, match="no compiler here"):
        loss = OVAIBLoss(kernel="inductor")(_named(zs)).loss
    expected = OVAIBLoss()(_named(zs)).loss
    torch.testing.assert_close(loss, expected)
    (g,) = torch.autograd.grad(loss, zs[0])
    (g_ref,) = torch.autograd.grad(expected, zs[0])
    torch.testing.assert_close(g, g_ref)
    assert fused._FAILED and "no compiler here" in fused._FAILED[0]


def test_compiled_runs_the_numba_kernels_on_the_cpu_and_inductor_where_numba_does_not_run(monkeypatch):
    # "compiled" = the fastest compiled code for the device: the numba sweep of "eager" on the CPU (bit-identical
    # to it), torch.compile (here a stand-in that records the call) where numba is not available
    from mmib.objectives.projection import numba_kernels

    zs = [torch.randn(6, 5, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    if numba_kernels.available():
        def no_compile(name):
            raise AssertionError("kernel='compiled' must run the numba kernels on the CPU")

        monkeypatch.setattr(fused, "compiled", no_compile)
        torch.testing.assert_close(OVAIBLoss(kernel="compiled")(_named(zs)).loss, OVAIBLoss()(_named(zs)).loss,
                                   rtol=0, atol=0)
        monkeypatch.undo()
    calls = []

    def recording(name):
        calls.append(name)
        return fused.KERNELS[name]  # run the same function uncompiled

    monkeypatch.setattr(numba_kernels, "available", lambda: False)
    monkeypatch.setattr(fused, "compiled", recording)
    monkeypatch.setattr(fused, "_FAILED", [])
    loss = OVAIBLoss(kernel="compiled")(_named(zs)).loss
    assert calls and set(calls) == {"sufficiency_block"}
    torch.testing.assert_close(loss, OVAIBLoss(kernel="torch")(_named(zs)).loss, rtol=1e-12, atol=1e-12)


def test_unknown_kernel_is_an_error():
    with pytest.raises(ValueError, match="kernel must be one of"):
        OVAIBLoss(kernel="triton")


def test_upper_to_full_round_trips_the_row_major_upper_triangle():
    g = torch.Generator().manual_seed(0)
    for k in (1, 2, 4):
        x = torch.randn(5, k, k, generator=g, dtype=torch.float64)
        full = x + x.mT
        upper = torch.stack([full[:, i, j] for i in range(k) for j in range(i, k)], 1)  # row-major by hand
        assert upper.shape == (5, k * (k + 1) // 2)
        torch.testing.assert_close(fused.upper_to_full(upper, k), full, rtol=0, atol=0)


def test_run_eager_never_compiles_and_a_recorded_failure_short_circuits(monkeypatch):
    def no_compile(name):
        raise AssertionError("kernel='eager' must not compile")

    monkeypatch.setattr(fused, "compiled", no_compile)
    seen = []
    monkeypatch.setitem(fused.KERNELS, "scores_forward", lambda *a: seen.append(a) or "eager result")
    assert fused.run("scores_forward", "eager", 1, 2) == "eager result" and seen == [(1, 2)]

    monkeypatch.undo()
    monkeypatch.setattr(fused, "_FAILED", [])
    fused.mark_failed("first reason")
    fused.mark_failed("second reason")
    assert fused._FAILED == ["first reason"]  # the first failure is the one reported
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning once a failure is recorded
        assert fused.call("scores_forward") is None
    with pytest.raises(RuntimeError, match="first reason"):
        fused.compiled("scores_forward")
