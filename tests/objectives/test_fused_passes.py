"""The fused one-pass losses of OVA-IB (_OneVsAllSufficiency) and GRAM (_GramAllAnchors) against the score-only
Functions they replace (_ProjectionScores / _GramVolumes followed by one cross-entropy per direction), in float64:
values and every gradient (embeddings and a learned temperature) to 1e-12, over several blocks of anchor rows (the
GRAM columns' logsumexp is accumulated online across blocks), the decoupled form and degenerate inputs. The float64
loop references of test_ova_ib_loss.py / test_gram_loss.py check the same losses against the paper's formulas."""

import pytest
import torch

import mmib.objectives.ova_ib as ova_mod
import mmib.objectives.projection.factor as factor
import mmib.objectives.projection.layout as layout
from mmib.objectives import GRAMLoss, OVAIBLoss
from mmib.objectives.base import contrastive_ce, l2_normalize
from mmib.objectives.projection.all_anchors import _GramAllAnchors
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


@pytest.mark.parametrize("m,n,d,pid,smoothing,learn,block,degenerate", [
    (3, 7, 5, True, 0.1, True, 32768, False),
    (4, 9, 6, False, 0.0, True, 30, False),   # one anchor row per block: a whole column hidden in a block
    (2, 6, 4, True, 0.1, False, 40, False),
    (5, 8, 6, True, 0.2, True, 50, True),
])
def test_gram_fused_pass_equals_the_volume_function_path(m, n, d, pid, smoothing, learn, block, degenerate,
                                                        monkeypatch):
    monkeypatch.setattr(layout, "BLOCK_ELEMENTS", block)
    zs = _inputs(m, n, d, 1, degenerate)
    calls = []
    real = _GramAllAnchors.apply
    monkeypatch.setattr(_GramAllAnchors, "apply", lambda *a: calls.append(1) or real(*a))
    kw = dict(temperature=0.2, label_smoothing=smoothing, positive_in_denominator=pid, learn_temperature=learn)
    fused = GRAMLoss(**kw).double()
    z1 = [z.clone().requires_grad_() for z in zs]
    out = fused({f"m{i}": z for i, z in enumerate(z1)})
    assert calls, "GRAMLoss did not take the fused pass"
    extra = [fused.temperature.tau_offset] if learn else []
    g1 = _grads(out.loss, z1, extra)
    reference = GRAMLoss(**kw).double()
    monkeypatch.setattr(reference, "_fused_losses", lambda *a: None)  # _GramVolumes + contrastive_ce
    z2 = [z.clone().requires_grad_() for z in zs]
    out2 = reference({f"m{i}": z for i, z in enumerate(z2)})
    g2 = _grads(out2.loss, z2, [reference.temperature.tau_offset] if learn else [])
    _close(out.loss, out2.loss)
    for key in out.terms:
        _close(out.terms[key], out2.terms[key])
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_small_cholesky_matches_lapack_and_flags_bad_matrices():
    g = torch.Generator().manual_seed(2)
    for k in (1, 2, 3, 5):
        x = torch.randn(4, 6, k, k + 2, generator=g, dtype=torch.float64)
        kmat = x @ x.mT + 1e-8 * torch.eye(k, dtype=torch.float64)
        chol, linv, ok = factor._small_cholesky(kmat)
        assert ok
        torch.testing.assert_close(chol, torch.linalg.cholesky(kmat), rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(linv @ chol, torch.eye(k, dtype=torch.float64).expand_as(chol), rtol=0,
                                   atol=1e-9)
    bad = torch.eye(2, dtype=torch.float64).repeat(3, 1, 1)
    bad[1, 1, 1] = -1.0
    assert not factor._small_cholesky(bad)[2]
    assert not factor._small_cholesky(torch.full((2, 2, 2), float("nan"), dtype=torch.float64))[2]
    with pytest.raises(ValueError, match="not positive definite"):
        factor.factor_tuple_grams(bad, 1e-8, "test")
