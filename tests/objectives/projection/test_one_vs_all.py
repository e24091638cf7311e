"""mmib.objectives.projection.one_vs_all: the fused one-pass OVA-IB loss (_OneVsAllSufficiency) against the
score-only Function it replaces (_ProjectionScores followed by one cross-entropy per direction), in float64:
values and every gradient (embeddings and a learned temperature) to 1e-12, over several blocks of anchor rows,
the decoupled form and degenerate inputs."""

import pytest
import torch

import mmib.objectives.ova_ib as ova_mod
import mmib.objectives.projection.layout as layout
from mmib.objectives import OVAIBLoss
from mmib.objectives.base import contrastive_ce, l2_normalize
from mmib.objectives.projection.one_vs_all import _OneVsAllSufficiency


def _inputs(m, n, d, seed, degenerate):
    g = torch.Generator().manual_seed(seed)
    zs = [torch.randn(n, d, generator=g, dtype=torch.float64) for _ in range(m)]
    if degenerate:  # a zero embedding (clamped norms, zero scores) and a repeated vector in a tuple
        zs[1][2] = 0.0
        zs[2][3] = zs[0][3]
    return zs


def _grads(loss, zs, extra):
    return torch.autograd.grad(loss, [*zs, *extra])


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("m,n,d,pid,learn,block,degenerate", [
    (3, 7, 5, True, False, 32768, False),
    (4, 9, 6, False, True, 5, False),      # one anchor row per block
    (5, 8, 7, True, True, 60, True),
    (3, 6, 4, True, True, 20, True),
])
def test_ova_ib_fused_pass_equals_the_score_function_path(m, n, d, pid, learn, block, degenerate, monkeypatch):
    monkeypatch.setattr(layout, "BLOCK_ELEMENTS", block)
    zs = _inputs(m, n, d, 0, degenerate)
    calls = []
    real = _OneVsAllSufficiency.apply
    monkeypatch.setattr(_OneVsAllSufficiency, "apply", lambda *a: calls.append(1) or real(*a))
    loss_fn = OVAIBLoss(temperature=0.2, beta=0.4, ridge=1e-3, positive_in_denominator=pid,
                        learn_temperature=learn).double()
    z1 = [z.clone().requires_grad_() for z in zs]
    out = loss_fn({f"m{i}": z for i, z in enumerate(z1)})
    assert calls, "OVAIBLoss did not take the fused pass"
    extra = [loss_fn.temperature.log_scale_offset] if learn else []
    g1 = _grads(out.loss, z1, extra)
    # the score-only Function, one cross-entropy per anchor, autograd's minimality term
    z2 = [z.clone().requires_grad_() for z in zs]
    u = [l2_normalize(z) for z in z2]
    cross, grams, sq = ova_mod.one_vs_rest_inputs(u, u, range(m))
    scale = loss_fn.temperature.scale()
    scores = ova_mod.projection_scores_from_gram(cross, grams, sq, 1e-3)
    per = torch.stack([contrastive_ce(scale * s, pid) for s in scores])
    total = per.mean() + 0.4 * ova_mod.minimality_term(u)[0]
    g2 = _grads(total, z2, extra)
    _close(out.loss, total)
    _close(torch.stack([out.terms[f"infonce_m{i}"] for i in range(m)]), per.detach())
    for a, b in zip(g1, g2):
        _close(a, b)
