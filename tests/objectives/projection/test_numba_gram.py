"""mmib.objectives.projection.numba_gram: GRAM's two numba passes (kernel="eager") against the torch loop
(kernel="torch") in float32: loss, gradients of the embeddings and of the learned temperature, both denominators,
the unshifted (scale · vol bound < 80) and the shifted softmaxes, a zero embedding (clamped volumes). The float64
comparison with _GramVolumes + contrastive_ce runs both kernels in test_all_anchors.py."""

import pytest
import torch

from mmib.objectives import GRAMLoss
from mmib.objectives.projection import numba_kernels

needs_numba = pytest.mark.skipif(not numba_kernels.available(), reason="numba is not installed")


def _loss_and_grads(zs, kernel, **kw):
    loss_fn = GRAMLoss(kernel=kernel, **kw)
    z1 = [z.clone().requires_grad_() for z in zs]
    out = loss_fn({f"m{i}": z for i, z in enumerate(z1)})
    grads = torch.autograd.grad(out.loss, [*z1, loss_fn.temperature.tau_offset])
    return out.loss.detach(), grads


@needs_numba
@pytest.mark.parametrize("m", [3, 4, 6])
@pytest.mark.parametrize("pid,smoothing,temperature", [(True, 0.1, 0.07), (False, 0.0, 0.07), (True, 0.1, 0.01)])
def test_gram_numba_passes_agree_with_the_torch_loop_in_float32(m, pid, smoothing, temperature):
    g = torch.Generator().manual_seed(m)
    zs = [torch.randn(70, 24, generator=g) for _ in range(m)]
    zs[1][2] = 0.0  # a zero embedding: volumes clamped at eps, their gradient masked
    kw = dict(positive_in_denominator=pid, label_smoothing=smoothing, temperature=temperature)
    loss_n, grads_n = _loss_and_grads(zs, "eager", **kw)
    loss_t, grads_t = _loss_and_grads(zs, "torch", **kw)
    torch.testing.assert_close(loss_n, loss_t, rtol=1e-5, atol=1e-6)
    for a, b in zip(grads_n, grads_t):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * float(b.abs().max()))
