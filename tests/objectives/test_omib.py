"""OMIB objective invariants (spec omib §9.A) against closed forms and float64 references."""

import math

import pytest
import torch

from mmib.objectives.omib import (
    OMFLoss,
    dynamic_weight,
    prediction_divergence,
    r_from_ratio,
    sample_beta,
)


@pytest.mark.parametrize("R", [1e-4, 0.1, 0.5, 1.0, 2.0, 3.7, 50.0, 1e4])
def test_r_identity_and_range(R):
    r = float(r_from_ratio(torch.tensor(R, dtype=torch.float64)))
    assert abs(r - (1 - math.tanh(math.log(R)))) < 1e-12
    assert 0 < r < 2


def test_r_special_values_and_monotone():
    assert float(r_from_ratio(torch.tensor(1.0))) == 1.0
    assert abs(float(r_from_ratio(torch.tensor(2.0))) - 0.4) < 1e-7
    assert abs(float(r_from_ratio(torch.tensor(0.5))) - 1.6) < 1e-7
    rs = r_from_ratio(torch.logspace(-3, 3, 50, dtype=torch.float64))
    assert (rs[1:] < rs[:-1]).all()
    r0 = r_from_ratio(torch.tensor(0.0))
    assert torch.isfinite(r0) and 0 < float(r0) <= 2  # (0, 2) up to float32 rounding at R → 0
    with pytest.raises(ValueError):
        r_from_ratio(torch.tensor(-1.0))


def _kl_loop(p_logits, q_logits):
    out = []
    for a, b in zip(p_logits.double().tolist(), q_logits.double().tolist()):
        la = [v - math.log(sum(math.exp(t) for t in a)) for v in a]
        lb = [v - math.log(sum(math.exp(t) for t in b)) for v in b]
        out.append(sum(math.exp(x) * (x - y) for x, y in zip(la, lb)))
    return out


@pytest.mark.parametrize("mode", ["mean_of_ratios", "ratio_of_means"])
def test_dynamic_weight_matches_float64_reference(mode):
    y1, y2, y = torch.randn(16, 3), torch.randn(16, 3), torch.randn(16, 3)
    r, R = dynamic_weight([y1, y2], y, "classification", mode)
    k1, k2 = _kl_loop(y1, y), _kl_loop(y2, y)
    if mode == "mean_of_ratios":
        R_ref = sum(b / (a + 1e-8) for a, b in zip(k1, k2)) / len(k1)
    else:
        R_ref = (sum(k2) / len(k2)) / (sum(k1) / len(k1) + 1e-8)
    assert abs(float(R[0]) - R_ref) < 1e-4 * max(1.0, R_ref)
    assert abs(float(r[0]) - (1 - math.tanh(math.log(R_ref)))) < 1e-5


def test_dynamic_weight_identical_branches_and_safety():
    y1, y = torch.randn(10, 4), torch.randn(10, 4)
    r, _ = dynamic_weight([y1, y1.clone()], y, "classification")
    assert abs(float(r[0]) - 1.0) < 1e-6
    # reference branch equal to the fused head: KL_1 = 0 → R huge, r → 0, never NaN
    r, R = dynamic_weight([y.clone(), y1], y, "classification")
    assert torch.isfinite(r).all() and 0 < float(r[0]) < 2
    # all three equal: 0/0 → R = 0 → r = 2 (bounded), no NaN
    r, _ = dynamic_weight([y.clone(), y.clone()], y, "classification")
    assert torch.isfinite(r).all() and float(r[0]) <= 2


def test_r_decreases_as_kl2_grows():
    y = torch.zeros(32, 3)
    y1 = 0.5 * torch.randn(32, 3)
    base = torch.randn(32, 3)
    rs = [float(dynamic_weight([y1, s * base], y, "classification")[0][0]) for s in (0.1, 0.5, 1.0, 2.0, 4.0)]
    assert all(a > b for a, b in zip(rs, rs[1:]))


def test_dynamic_weight_three_modalities_reference_is_first():
    y1, y2, y3, y = (torch.randn(12, 3) for _ in range(4))
    r, R = dynamic_weight([y1, y2, y3], y, "classification")
    assert r.shape == (2,)
    r2, _ = dynamic_weight([y1, y3], y, "classification")
    assert abs(float(r[1]) - float(r2[0])) < 1e-6


def test_prediction_divergence_regression_is_squared_distance():
    a, b = torch.randn(5, 1), torch.randn(5, 1)
    torch.testing.assert_close(prediction_divergence(a, b, "regression"), ((a - b) ** 2).sum(1))
    kl = prediction_divergence(torch.randn(5, 3), torch.randn(5, 3), "classification")
    assert (kl >= 0).all()


def test_omf_loss_reference_and_beta_zero():
    logits, y = torch.randn(9, 3), torch.randint(0, 3, (9,))
    kls = [torch.rand(9), torch.rand(9)]
    r = torch.tensor([0.7])
    out = OMFLoss(0.05)(logits, y, kls, r)
    ce = torch.nn.functional.cross_entropy(logits.double(), y, reduction="none")
    ref = (ce + 0.05 * (kls[0].double() + 0.7 * kls[1].double())).mean()
    assert abs(float(out.loss) - float(ref)) < 1e-6
    assert abs(float(OMFLoss(0.0)(logits, y, kls, r).loss) - float(ce.mean())) < 1e-6
    with pytest.raises(ValueError, match="weights r"):
        OMFLoss(0.1)(logits, y, kls, torch.tensor([1.0, 1.0]))


@pytest.mark.parametrize("scale", ["log", "linear"])
def test_sample_beta_in_range(scale):
    g = torch.Generator().manual_seed(0)
    bs = [sample_beta(1e-4, 3e-3, g, scale) for _ in range(200)]
    assert all(1e-4 <= b <= 3e-3 for b in bs)
    assert len(set(bs)) > 100
    with pytest.raises(ValueError):
        sample_beta(1e-3, 1e-4)


