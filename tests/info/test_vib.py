"""VIB KL vs torch.distributions (independent reference)."""

import pytest
import torch

from mmib.info import gaussian_kl


def test_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu_q, lv_q, mu_p, lv_p = (torch.randn(5, 3, generator=g, dtype=torch.float64) for _ in range(4))
    q = torch.distributions.Normal(mu_q, (0.5 * lv_q).exp())
    ref_std = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(-1)
    assert torch.allclose(gaussian_kl(mu_q, lv_q, reduction="none"), ref_std, atol=1e-12)
    ref = torch.distributions.kl_divergence(q, torch.distributions.Normal(mu_p, (0.5 * lv_p).exp())).sum(-1)
    assert torch.allclose(gaussian_kl(mu_q, lv_q, mu_p, lv_p, reduction="none"), ref, atol=1e-12)
    assert gaussian_kl(mu_q, lv_q).item() == pytest.approx(ref_std.mean().item(), abs=1e-12)
    assert gaussian_kl(mu_q, lv_q, reduction="sum").item() == pytest.approx(ref_std.sum().item(), abs=1e-12)
    assert gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4)).item() == 0.0


def test_gaussian_kl_bad_inputs():
    with pytest.raises(ValueError, match="reduction"):
        gaussian_kl(torch.zeros(2, 2), torch.zeros(2, 2), reduction="avg")
    with pytest.raises(ValueError, match="logvar_q must be a tensor of the shape"):
        gaussian_kl(torch.zeros(2, 2), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="mu_q contains NaN"):
        gaussian_kl(torch.tensor([[float("nan")]]), torch.zeros(1, 1))
