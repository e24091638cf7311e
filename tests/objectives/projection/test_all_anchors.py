"""mmib.objectives.projection.all_anchors: the fused one-pass GRAM loss (_GramAllAnchors) against the score-only
Function it replaces (_GramVolumes followed by one cross-entropy per direction), in float64: values and every gradient
(embeddings and a learned temperature) to 1e-12, over several blocks of anchor rows (the columns' logsumexp is
accumulated online across blocks), the decoupled form and degenerate inputs. The float64 loop references of
test_gram_loss.py check the same loss against the paper's formulas; test_one_vs_all.py does the same for OVA-IB."""

import pytest
import torch

import mmib.objectives.projection.layout as layout
from mmib.objectives import GRAMLoss
from mmib.objectives.projection import all_anchors, numba_gram, numba_kernels
from mmib.objectives.projection.all_anchors import _GramAllAnchors, _GramTwoModalities


@pytest.mark.parametrize("kernel", ["eager", "torch"])
@pytest.mark.parametrize("m,n,d,pid,smoothing,learn,block,degenerate,temperature", [
    (3, 7, 5, True, 0.1, True, 32768, False, 0.2),
    (4, 9, 6, False, 0.0, True, 30, False, 0.2),   # one anchor row per block: a whole column hidden in a block
    (2, 6, 4, False, 0.0, False, 40, False, 0.2),  # M = 2, decoupled form: not the two-modality path
    (5, 8, 6, True, 0.2, True, 50, True, 0.2),
    # scale 100 > EXP_LOGIT_BOUND: the softmaxes from the shifted logsumexp (running column maximum)
    (3, 7, 5, True, 0.1, True, 32768, False, 0.01),
    (4, 9, 6, False, 0.0, True, 30, True, 0.01),
])
def test_gram_fused_pass_equals_the_volume_function_path(m, n, d, pid, smoothing, learn, block, degenerate,
                                                        temperature, kernel,
                                                        monkeypatch, float64_embeddings, assert_close_f64):
    monkeypatch.setattr(layout, "BLOCK_ELEMENTS", block)
    zs = float64_embeddings(m, n, d, 1, degenerate)
    calls, sweeps = [], []
    real = _GramAllAnchors.apply
    monkeypatch.setattr(_GramAllAnchors, "apply", lambda *a: calls.append(1) or real(*a))
    real_sweep = numba_gram.gram_sweep_volumes
    monkeypatch.setattr(numba_gram, "gram_sweep_volumes", lambda *a: sweeps.append(1) or real_sweep(*a))
    kw = dict(temperature=temperature, label_smoothing=smoothing, positive_in_denominator=pid,
              learn_temperature=learn)
    fused = GRAMLoss(**kw, kernel=kernel).double()
    z1 = [z.clone().requires_grad_() for z in zs]
    out = fused({f"m{i}": z for i, z in enumerate(z1)})
    assert calls, "GRAMLoss did not take the fused pass"
    # kernel="eager" runs the passes as numba kernels where numba imports; "torch" never does
    assert bool(sweeps) == (kernel == "eager" and numba_kernels.available())
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




def _gram_and_reference(zs, monkeypatch, **kw):
    """GRAMLoss's loss, terms and gradients (embeddings, learned temperature) and the same from _GramVolumes +
    contrastive_ce (the fused passes switched off), in float64."""
    outs = []
    for fused in (True, False):
        loss_fn = GRAMLoss(**kw).double()
        if not fused:
            monkeypatch.setattr(loss_fn, "_fused_losses", lambda *a: None)
        z = [x.clone().requires_grad_() for x in zs]
        out = loss_fn({f"m{i}": x for i, x in enumerate(z)})
        extra = [loss_fn.temperature.tau_offset] if loss_fn.temperature.learnable else []
        outs.append((out, torch.autograd.grad(out.loss, [*z, *extra])))
    return outs


@pytest.mark.parametrize("smoothing,learn,seed", [(0.1, True, 0), (0.0, False, 1), (0.2, True, 2)])
def test_gram_two_modality_path_equals_the_volume_function_path(smoothing, learn, seed, monkeypatch,
                                                                float64_embeddings, assert_close_f64):
    zs = float64_embeddings(2, 9, 5, seed, False)
    zs[1][4] = zs[0][4] * 3.0  # a collinear pair: a volume of √ridge
    calls = {"two": 0, "all": 0}
    for name, cls in (("two", _GramTwoModalities), ("all", _GramAllAnchors)):
        real = cls.apply
        monkeypatch.setattr(cls, "apply", lambda *a, _r=real, _n=name: calls.__setitem__(_n, calls[_n] + 1) or _r(*a))
    (out, g1), (out2, g2) = _gram_and_reference(zs, monkeypatch, temperature=0.2, label_smoothing=smoothing,
                                                learn_temperature=learn)
    assert calls == {"two": 1, "all": 0}
    assert_close_f64(out.loss, out2.loss)
    for key in out.terms:
        assert_close_f64(out.terms[key], out2.terms[key])
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("case", ["zero row", "large scale"])
def test_gram_two_modality_path_falls_back_to_the_general_pass(case, monkeypatch, float64_embeddings,
                                                               assert_close_f64):
    zs = float64_embeddings(2, 7, 4, 3, False)
    temperature = 0.2
    if case == "zero row":  # the anchors' volume matrices differ by the ridge there
        zs[0][2] = 0.0
    else:  # scale · vol could exceed EXP_LOGIT_BOUND: exp(−scale·vol) unshifted could underflow
        temperature = 1.0 / (all_anchors.EXP_LOGIT_BOUND + 1.0)
    assert all_anchors.gram_two_modalities(*[torch.nn.functional.normalize(z, dim=-1) for z in zs],
                                           torch.tensor(1.0 / temperature, dtype=torch.float64), 1e-10, 1e-20,
                                           0.1) is None
    (out, g1), (out2, g2) = _gram_and_reference(zs, monkeypatch, temperature=temperature)
    assert_close_f64(out.loss, out2.loss)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
