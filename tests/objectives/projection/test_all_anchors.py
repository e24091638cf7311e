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


@pytest.mark.parametrize("m,n,d,pid,smoothing,learn,block,degenerate", [
    (3, 7, 5, True, 0.1, True, 32768, False),
    (4, 9, 6, False, 0.0, True, 30, False),   # one anchor row per block: a whole column hidden in a block
    (2, 6, 4, True, 0.1, False, 40, False),
    (5, 8, 6, True, 0.2, True, 50, True),
])
def test_gram_fused_pass_equals_the_volume_function_path(m, n, d, pid, smoothing, learn, block, degenerate,
                                                        monkeypatch, float64_embeddings, assert_close_f64):
    monkeypatch.setattr(layout, "BLOCK_ELEMENTS", block)
    zs = float64_embeddings(m, n, d, 1, degenerate)
    calls = []
    real = _GramAllAnchors.apply
    monkeypatch.setattr(_GramAllAnchors, "apply", lambda *a: calls.append(1) or real(*a))
    kw = dict(temperature=0.2, label_smoothing=smoothing, positive_in_denominator=pid, learn_temperature=learn)
    fused = GRAMLoss(**kw).double()
    z1 = [z.clone().requires_grad_() for z in zs]
    out = fused({f"m{i}": z for i, z in enumerate(z1)})
    assert calls, "GRAMLoss did not take the fused pass"
    extra = [fused.temperature.tau_offset] if learn else []
    g1 = torch.autograd.grad(out.loss, [*z1, *extra])
    reference = GRAMLoss(**kw).double()
    monkeypatch.setattr(reference, "_fused_losses", lambda *a: None)  # _GramVolumes + contrastive_ce
    z2 = [z.clone().requires_grad_() for z in zs]
    out2 = reference({f"m{i}": z for i, z in enumerate(z2)})
    extra2 = [reference.temperature.tau_offset] if learn else []
    g2 = torch.autograd.grad(out2.loss, [*z2, *extra2])
    assert_close_f64(out.loss, out2.loss)
    for key in out.terms:
        assert_close_f64(out.terms[key], out2.terms[key])
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


