"""mmib.objectives.projection.numba_kernels: the numba sweep of OVA-IB (kernel="eager") against the torch loop
(kernel="torch") in float32 (loss, gradients of the embeddings and of a learned temperature), and kernel="eager"
without numba (the torch loops of OVA-IB and GRAM, same values). GRAM's kernels: test_numba_gram.py; the float64
comparisons with the score / volume Function paths: test_one_vs_all.py and test_all_anchors.py."""

import sys

import pytest
import torch

from mmib.objectives import GRAMLoss, OVAIBLoss
from mmib.objectives.projection import numba_gram, numba_kernels

needs_numba = pytest.mark.skipif(not numba_kernels.available(), reason="numba is not installed")


def _loss_and_grads(zs, kernel, gram=False, **kw):
    if gram:
        loss_fn = GRAMLoss(kernel=kernel, **kw)
        extra = loss_fn.temperature.tau_offset
    else:
        loss_fn = OVAIBLoss(temperature=0.1, beta=0.4, ridge=1e-3, learn_temperature=True, kernel=kernel, **kw)
        extra = loss_fn.temperature.log_scale_offset
    z1 = [z.clone().requires_grad_() for z in zs]
    out = loss_fn({f"m{i}": z for i, z in enumerate(z1)})
    grads = torch.autograd.grad(out.loss, [*z1, extra])
    return out.loss.detach(), grads


@needs_numba
@pytest.mark.parametrize("m", [3, 4, 6])
@pytest.mark.parametrize("pid", [True, False])
def test_numba_sweep_agrees_with_the_torch_loop_in_float32(m, pid):
    g = torch.Generator().manual_seed(m)
    zs = [torch.randn(70, 24, generator=g) for _ in range(m)]
    zs[1][2] = 0.0  # a zero embedding: clamped norms and projections, as the torch loop
    zs[2][3] = zs[0][3]
    loss_n, grads_n = _loss_and_grads(zs, "eager", positive_in_denominator=pid)
    loss_t, grads_t = _loss_and_grads(zs, "torch", positive_in_denominator=pid)
    torch.testing.assert_close(loss_n, loss_t, rtol=1e-5, atol=1e-6)
    for a, b in zip(grads_n, grads_t):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()))


def test_eager_without_numba_runs_the_torch_loop(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` raises ImportError
    monkeypatch.setattr(numba_kernels, "_STATE", [])
    assert not numba_kernels.available()
    for mod, name in ((numba_kernels, "ova_sweep"), (numba_kernels, "tuple_factors"), (numba_kernels, "row_grams"),
                      (numba_gram, "gram_sweep_volumes"), (numba_gram, "gram_sweep_gradient")):
        monkeypatch.setattr(mod, name, lambda *a: pytest.fail("a numba kernel ran without numba"))
    g = torch.Generator().manual_seed(0)
    zs = [torch.randn(20, 8, generator=g, dtype=torch.float64) for _ in range(4)]
    for gram in (False, True):
        loss_e, grads_e = _loss_and_grads(zs, "eager", gram)
        loss_t, grads_t = _loss_and_grads(zs, "torch", gram)
        torch.testing.assert_close(loss_e, loss_t, rtol=0, atol=0)
        for a, b in zip(grads_e, grads_t):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_use_numba_only_for_eager_or_compiled_float_cpu_inputs():
    t32 = torch.zeros(2)
    assert numba_kernels.use_numba("eager", t32) == numba_kernels.available()
    assert numba_kernels.use_numba("eager", t32.double()) == numba_kernels.available()
    assert not numba_kernels.use_numba("torch", t32)
    assert numba_kernels.use_numba("compiled", t32) == numba_kernels.available()  # the fastest compiled code
    assert not numba_kernels.use_numba("inductor", t32)
    assert not numba_kernels.use_numba("eager", t32.bfloat16())  # numba has no bfloat16: the torch loop


@needs_numba
@pytest.mark.parametrize("m", [3, 5])
def test_row_grams_and_tuple_factors_equal_the_torch_factorization(m):
    from mmib.objectives.projection.pairs import tuple_factors, tuple_factors_numba

    g = torch.Generator().manual_seed(m)
    zs = [torch.randn(11, 6, generator=g) for _ in range(m)]
    zstack, full, linv, kin, kinv, det = tuple_factors_numba(zs, 1e-3, "x")
    z64 = torch.stack(zs, 1).double()
    torch.testing.assert_close(full, z64 @ z64.mT, rtol=1e-13, atol=1e-13)  # float32 products are exact in float64
    _, full_t, inv_t, kinv_t, det_t = tuple_factors(zs, 1e-3, "x")
    k, n = m - 1, zs[0].shape[0]
    for i in range(k):
        for j in range(i + 1):
            torch.testing.assert_close(linv[:, i, j].double(), inv_t[i][j].view(m, n).float().double())
    torch.testing.assert_close(kinv, kinv_t, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(kin, kinv_t.permute(0, 2, 3, 1).float())
    torch.testing.assert_close(det, det_t.view(m, n), rtol=1e-12, atol=0)
    with pytest.raises(ValueError, match="x: the tuple Gram matrix is not positive definite"):
        tuple_factors_numba([torch.full((3, 4), float("nan"))] * m, 1e-3, "x")
