"""mmib.objectives.projection.one_vs_all: the fused one-pass OVA-IB loss (_OneVsAllSufficiency) against the
score-only Function it replaces (_ProjectionScores followed by one cross-entropy per direction), in float64:
values and every gradient (embeddings and a learned temperature) to 1e-12, over several blocks of anchor rows,
the decoupled form and degenerate inputs, for both the numba sweep (kernel="eager") and the torch loop
(kernel="torch"); test_numba_kernels.py compares the two in float32 and runs without numba."""

import pytest
import torch

import mmib.objectives.ova_ib as ova_mod
import mmib.objectives.projection.layout as layout
from mmib.objectives import OVAIBLoss
from mmib.objectives.base import contrastive_ce, l2_normalize
from mmib.objectives.projection import numba_kernels
from mmib.objectives.projection.one_vs_all import _OneVsAllSufficiency


@pytest.mark.parametrize("kernel", ["eager", "torch"])
@pytest.mark.parametrize("m,n,d,pid,learn,block,degenerate", [
    (3, 7, 5, True, False, 32768, False),
    (4, 9, 6, False, True, 5, False),      # one anchor row per block
    (5, 8, 7, True, True, 60, True),
    (3, 6, 4, True, True, 20, True),
    (6, 10, 8, False, True, 70, True),
    (6, 9, 7, True, True, 32768, False),
])
def test_ova_ib_fused_pass_equals_the_score_function_path(m, n, d, pid, learn, block, degenerate, kernel,
                                                          monkeypatch, float64_embeddings, assert_close_f64):
    monkeypatch.setattr(layout, "BLOCK_ELEMENTS", block)
    zs = float64_embeddings(m, n, d, 0, degenerate)
    calls, sweeps = [], []
    real = _OneVsAllSufficiency.apply
    monkeypatch.setattr(_OneVsAllSufficiency, "apply", lambda *a: calls.append(1) or real(*a))
    real_sweep = numba_kernels.ova_sweep
    monkeypatch.setattr(numba_kernels, "ova_sweep", lambda *a: sweeps.append(1) or real_sweep(*a))
    loss_fn = OVAIBLoss(temperature=0.2, beta=0.4, ridge=1e-3, positive_in_denominator=pid,
                        learn_temperature=learn, kernel=kernel).double()
    z1 = [z.clone().requires_grad_() for z in zs]
    out = loss_fn({f"m{i}": z for i, z in enumerate(z1)})
    assert calls, "OVAIBLoss did not take the fused pass"
    # kernel="eager" is the numba sweep where numba imports; "torch" never is
    assert bool(sweeps) == (kernel == "eager" and numba_kernels.available())
    extra = [loss_fn.temperature.log_scale_offset] if learn else []
    g1 = torch.autograd.grad(out.loss, [*z1, *extra])
    # the score-only Function, one cross-entropy per anchor, autograd's minimality term
    z2 = [z.clone().requires_grad_() for z in zs]
    u = [l2_normalize(z) for z in z2]
    cross, grams, sq = ova_mod.one_vs_rest_inputs(u, u, range(m))
    scale = loss_fn.temperature.scale()
    scores = ova_mod.projection_scores_from_gram(cross, grams, sq, 1e-3)
    per = torch.stack([contrastive_ce(scale * s, pid) for s in scores])
    total = per.mean() + 0.4 * ova_mod.minimality_term(u)[0]
    g2 = torch.autograd.grad(total, [*z2, *extra])
    assert_close_f64(out.loss, total)
    assert_close_f64(torch.stack([out.terms[f"infonce_m{i}"] for i in range(m)]), per.detach())
    for a, b in zip(g1, g2):
        assert_close_f64(a, b)
