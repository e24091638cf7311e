"""VIB pieces (objectives/vib.py) against float64 references."""

import math

import pytest
import torch

from mmib.objectives.vib import VIBLoss, gaussian_kl_standard, task_nll


def _ce_ref(logits, y):
    out = []
    for row, t in zip(logits.double().tolist(), y.tolist()):
        lse = math.log(sum(math.exp(v) for v in row))
        out.append(lse - row[t])
    return torch.tensor(out, dtype=torch.float64)


def _kl_ref(mu, logvar):
    out = []
    for m_row, l_row in zip(mu.double().tolist(), logvar.double().tolist()):
        out.append(0.5 * sum(m * m + math.exp(lv) - lv - 1 for m, lv in zip(m_row, l_row)))
    return torch.tensor(out, dtype=torch.float64)


def test_task_nll_classification_regression_svdd():
    logits, y = torch.randn(7, 4), torch.randint(0, 4, (7,))
    torch.testing.assert_close(task_nll(logits, y, "classification").double(), _ce_ref(logits, y), atol=1e-5, rtol=0)
    out, t = torch.randn(7, 2), torch.randn(7, 2)
    torch.testing.assert_close(task_nll(out, t, "regression"), ((out - t) ** 2).mean(1))
    torch.testing.assert_close(task_nll(out[:, :1], t[:, 0], "regression"), (out[:, 0] - t[:, 0]) ** 2)
    c = torch.randn(2)
    torch.testing.assert_close(task_nll(out, None, "svdd", c), ((out - c) ** 2).sum(1))


def test_task_nll_errors():
    with pytest.raises(ValueError, match="task must be"):
        task_nll(torch.randn(3, 2), torch.zeros(3, dtype=torch.long), "ranking")
    with pytest.raises(ValueError, match="centre"):
        task_nll(torch.randn(3, 2), None, "svdd")
    with pytest.raises(ValueError, match="class indices"):
        task_nll(torch.randn(3, 2), torch.zeros(3), "classification")
    with pytest.raises(ValueError, match="targets"):
        task_nll(torch.randn(3, 2), torch.zeros(4, dtype=torch.long), "classification")


def test_gaussian_kl_closed_form_nonnegative_and_zero_at_prior():
    mu, lv = torch.randn(6, 5), torch.randn(6, 5)
    kl = gaussian_kl_standard(mu, lv)
    torch.testing.assert_close(kl.double(), _kl_ref(mu, lv), atol=1e-5, rtol=1e-6)
    assert (kl >= 0).all()
    torch.testing.assert_close(gaussian_kl_standard(mu, lv, "mean"), kl / 5)
    assert torch.equal(gaussian_kl_standard(torch.zeros(3, 4), torch.zeros(3, 4)), torch.zeros(3))
    with pytest.raises(ValueError, match="latent_reduction"):
        gaussian_kl_standard(mu, lv, "max")


def test_vib_loss_reference_and_beta_zero():
    logits, y = torch.randn(8, 3), torch.randint(0, 3, (8,))
    kls = [torch.rand(8), torch.rand(8)]
    out = VIBLoss(0.3)(logits, y, kls, [1.0, 0.5])
    ref = (_ce_ref(logits, y) + 0.3 * (kls[0].double() + 0.5 * kls[1].double())).mean()
    assert abs(float(out.loss) - float(ref)) < 1e-5
    zero = VIBLoss(0.0)(logits, y, kls)
    assert abs(float(zero.loss) - float(_ce_ref(logits, y).mean())) < 1e-5
    with pytest.raises(ValueError, match="beta"):
        VIBLoss(-1.0)
    with pytest.raises(ValueError, match="weights"):
        VIBLoss(1.0)(logits, y, kls, [1.0])
