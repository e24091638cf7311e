"""mmib.objectives.projection.all_anchors: the fused one-pass GRAM loss (_GramAllAnchors) against the score-only
Function it replaces (_GramVolumes followed by one cross-entropy per direction), in float64: values and every gradient
(embeddings and a learned temperature) to 1e-12, over several blocks of anchor rows (the columns' logsumexp is
accumulated online across blocks), the decoupled form and degenerate inputs. The float64 loop references of
test_gram_loss.py check the same loss against the paper's formulas; test_one_vs_all.py does the same for OVA-IB."""

import pytest
import torch

import mmib.objectives.projection.layout as layout
from mmib.objectives import GRAMLoss
from mmib.objectives.projection.all_anchors import _GramAllAnchors


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


