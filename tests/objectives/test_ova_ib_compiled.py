"""The torch.compile kernel of the OVA-IB projection score (kernel="compiled") and its fallback."""

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
        out = OVAIBLoss(temperature=0.2, beta=0.3, ridge=1e-3, kernel="compiled")(_named(zs))
        total, _, _ = ref.ova_ib_loss(zs, 0.2, 0.3, ridge=1e-3)
        assert_matches(out.loss, total, zs, rtol=1e-7, atol=1e-9)

        with torch.no_grad():
            zs[1][2] = 0.0
        kw = {"temperature": 0.2, "beta": 0.3, "ridge": 1e-3}
        compiled = OVAIBLoss(**kw, kernel="compiled")(_named(zs)).loss
        assert torch.isfinite(compiled)
        assert_matches(compiled, OVAIBLoss(**kw)(_named(zs)).loss, zs, rtol=1e-9, atol=1e-9)

        a = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
        t = [torch.randn(5, 3, dtype=torch.float64, requires_grad=True) for _ in range(2)]

        def f(a, t0, t1):
            cross = [a @ t0.T, a @ t1.T]
            return projection_score_from_gram(cross, rowwise_gram([t0, t1]), (a * a).sum(-1), 0.7, "compiled")

        assert torch.autograd.gradcheck(f, (a, *t))
    assert not fused._FAILED


def test_failed_compilation_warns_once_and_falls_back_to_eager(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(fused, "_FAILED", [])
    monkeypatch.setattr(fused, "compiled", lambda name: broken)
    zs = [torch.randn(5, 4, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    with pytest.warns(RuntimeWarning, match="no compiler here"):
        loss = OVAIBLoss(kernel="compiled")(_named(zs)).loss
    expected = OVAIBLoss()(_named(zs)).loss
    torch.testing.assert_close(loss, expected)
    (g,) = torch.autograd.grad(loss, zs[0])
    (g_ref,) = torch.autograd.grad(expected, zs[0])
    torch.testing.assert_close(g, g_ref)
    assert fused._FAILED and "no compiler here" in fused._FAILED[0]


def test_unknown_kernel_is_an_error():
    with pytest.raises(ValueError, match="kernel must be one of"):
        OVAIBLoss(kernel="triton")
