"""Estimator diagnostics: dead ReLU units, saturation, and the bounds with their optimal critic (oracle rows)."""

import math

import pytest
import torch

from mmib.info import CLUBEstimator, InfoNCEEstimator, estimate_mi
from mmib.info.diagnostics import (
    dead_unit_fraction,
    gaussian_oracle_estimates,
    gaussian_pointwise_mi,
    saturation,
)
from mmib.info.gaussian import correlated_gaussians, correlation_for_mi, gaussian_club_value


def test_dead_units_counts_units_never_positive_on_the_held_out_pairs():
    torch.manual_seed(0)
    est = InfoNCEEstimator(3, 3, critic_kwargs={"hidden_dim": 10})
    x, y = torch.randn(128, 3), torch.randn(128, 3)
    assert dead_unit_fraction(est, x, y) == (0.0, 10)  # a fresh layer: every unit fires somewhere
    with torch.no_grad():  # kill 4 units: zero weights and a negative bias
        est.critic.first.weight[:4] = 0.0
        est.critic.first.bias[:4] = -1.0
    assert dead_unit_fraction(est, x, y) == (0.4, 10)
    club = CLUBEstimator(3, 3, hidden_dim=5)
    frac, units = dead_unit_fraction(club, x, y)
    assert units == 10 and frac == 0.0  # the μ and log σ² networks
    relus = [m for m in club.modules() if isinstance(m, torch.nn.ReLU)]
    first = [m for m in club.modules() if isinstance(m, torch.nn.Linear) and m.out_features == 5]
    assert len(relus) == 2 and len(first) == 2
    with torch.no_grad():  # kill 4 of the 5 units of one network: 0.8 in that layer (pooled over both it would be 0.4)
        first[0].weight[:4] = 0.0
        first[0].bias[:4] = -1.0
    assert dead_unit_fraction(club, x, y) == (0.8, 10)
    assert dead_unit_fraction(CLUBEstimator(3, 3, q="linear"), x, y) == (0.0, 0)


def test_saturation_of_a_critic_and_of_clubs_variance():
    x = torch.nn.functional.normalize(torch.randn(64, 16, generator=torch.Generator().manual_seed(0)), dim=1)
    est = InfoNCEEstimator(16, 16, critic="bilinear")
    with torch.no_grad():
        est.critic.weight.copy_(100.0 * torch.eye(16))  # unit rows: the positive wins every row by a wide margin
    assert saturation(est, x, x) > 0.9
    with torch.no_grad():
        est.critic.weight.zero_()  # uniform softmax: 1/64 on the positive
    assert saturation(est, x, x) == 0.0
    x = x[:, :2]
    club = CLUBEstimator(2, 2, hidden_dim=4)
    with torch.no_grad():
        club.critic.logvar[0][-1].bias.fill_(50.0)  # tanh pinned at 1
    assert saturation(club, x, x) == 1.0
    assert saturation(CLUBEstimator(2, 2, q="linear"), x, x) is None


def test_pointwise_mi_matches_the_densities_and_oracle_club_matches_the_closed_form():
    d, mi = 4, 1.5
    x, y = correlated_gaussians(6, d, mi, 0)
    s = gaussian_pointwise_mi(x, y, mi)
    rho = correlation_for_mi(d, mi)
    std = math.sqrt(1 - rho**2)
    for i in range(6):
        for j in range(6):
            cond = torch.distributions.Normal(rho * x[i].double(), std).log_prob(y[j].double()).sum()
            marg = torch.distributions.Normal(0.0, 1.0).log_prob(y[j].double()).sum()
            assert s[i, j].item() == pytest.approx((cond - marg).item(), abs=1e-9)
    # large batch: CLUB with the exact q -> d(e^{2I/d} - 1); InfoNCE's oracle -> I (log N >> I), below it
    xb, yb = correlated_gaussians(4000, d, mi, 1)
    o = gaussian_oracle_estimates(xb, yb, mi)
    assert o["club"] == pytest.approx(gaussian_club_value(d, mi), rel=0.05)
    assert o["infonce"] == pytest.approx(mi, abs=0.1) and o["infonce"] <= math.log(4000)
    assert o["nwj"] == pytest.approx(mi, abs=0.15) and o["mine"] == pytest.approx(mi, abs=0.15)


def test_estimate_mi_reports_the_diagnostics():
    x, y = correlated_gaussians(256, 2, 1.0, 0)
    r = estimate_mi(x, y, method="infonce", steps=5, batch_size=32, critic_kwargs={"hidden_dim": 8}, eval_batches=2)
    assert 0.0 <= r.dead_units <= 1.0 and 0.0 <= r.saturation <= 1.0
    r = estimate_mi(x, y, method="club", steps=5, batch_size=32, club_q="linear", eval_batches=2)
    assert r.dead_units == 0.0 and r.saturation is None
