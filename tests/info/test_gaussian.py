"""Gaussian closed forms vs Monte-Carlo and plug-in estimates; TC/DTC/one-vs-all identities (OVA-IB Thm 3.3)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import multivariate_normal

from mmib.info import (
    conditional_gaussians,
    conditional_gaussians_covariance,
    correlated_gaussians,
    correlated_gaussians_covariance,
    correlation_for_mi,
    gaussian_cmi,
    gaussian_dual_total_correlation,
    gaussian_entropy,
    gaussian_mi,
    gaussian_one_vs_all_mi,
    gaussian_total_correlation,
    plugin_mutual_information,
)


def _random_cov(seed, n):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n))
    return a @ a.T + 0.1 * np.eye(n)


@pytest.mark.parametrize("dim", [1, 3, 50])
@pytest.mark.parametrize("mi", [0.5, 2.0, 10.0])
def test_correlated_gaussians_covariance_has_the_requested_mi(dim, mi):
    cov = correlated_gaussians_covariance(dim, mi)
    assert gaussian_mi(cov, range(dim), range(dim, 2 * dim)) == pytest.approx(mi, rel=1e-7)


def test_correlated_gaussians_samples_match_their_covariance():
    x, y = correlated_gaussians(40000, 2, 1.5, seed=3)
    emp = np.cov(np.concatenate([x.numpy(), y.numpy()], 1).T)
    assert np.allclose(emp, correlated_gaussians_covariance(2, 1.5), atol=0.03)
    x2, _ = correlated_gaussians(10, 2, 1.5, seed=3)
    assert np.array_equal(x2.numpy(), correlated_gaussians(10, 2, 1.5, seed=3)[0].numpy())  # seeded


@pytest.mark.parametrize("dim, cmi", [(1, 0.3), (5, 2.32), (20, 4.0)])
def test_conditional_generator_cmi_closed_form(dim, cmi):
    cov = conditional_gaussians_covariance(dim, cmi)
    ix, iy, ic = range(dim), range(dim, 2 * dim), range(2 * dim, 3 * dim)
    assert gaussian_cmi(cov, ix, iy, ic) == pytest.approx(cmi, rel=1e-8)
    # conditioning matters: with independent random A, B the unconditional MI differs from the CMI
    assert abs(gaussian_mi(cov, ix, iy) - cmi) > 0.1


def test_conditional_generator_samples_match_covariance_and_grouping():
    x1, x2, c = conditional_gaussians(60000, 2, 1.0, seed=1, samples_per_condition=4)
    emp = np.cov(np.concatenate([x1.numpy(), x2.numpy(), c.numpy()], 1).T)
    assert np.allclose(emp, conditional_gaussians_covariance(2, 1.0), atol=0.05)
    assert (c[0] == c[3]).all() and not (c[0] == c[4]).all()
    with pytest.raises(ValueError, match="samples_per_condition"):
        conditional_gaussians(10, 2, 1.0, samples_per_condition=3)


def test_closed_form_matches_monte_carlo_log_density_ratio():
    cov = _random_cov(0, 3)
    rng = np.random.default_rng(1)
    z = rng.multivariate_normal(np.zeros(3), cov, size=40000)
    ix, iy = [0], [1, 2]
    pmi = (multivariate_normal(cov=cov).logpdf(z) - multivariate_normal(cov=cov[np.ix_(ix, ix)]).logpdf(z[:, ix])
           - multivariate_normal(cov=cov[np.ix_(iy, iy)]).logpdf(z[:, iy]))
    se = pmi.std() / math.sqrt(len(pmi))
    assert abs(pmi.mean() - gaussian_mi(cov, ix, iy)) < 4 * se
    # CMI as a Monte-Carlo average of log p(x,y|c) - log p(x|c) - log p(y|c) = log p(xyc)p(c) / p(xc)p(yc)
    cov4 = _random_cov(2, 4)
    z = rng.multivariate_normal(np.zeros(4), cov4, size=40000)

    def lp(idx):
        return multivariate_normal(cov=cov4[np.ix_(idx, idx)]).logpdf(z[:, idx])

    pc = lp([0, 1, 2, 3]) + lp([3]) - lp([0, 3]) - lp([1, 2, 3])
    assert abs(pc.mean() - gaussian_cmi(cov4, [0], [1, 2], [3])) < 4 * pc.std() / math.sqrt(len(pc))
    assert gaussian_entropy(cov4) == pytest.approx(multivariate_normal(cov=cov4).entropy(), rel=1e-10)


def test_closed_form_matches_discretized_plugin_in_one_dimension():
    rho = 0.8
    true = -0.5 * math.log(1 - rho**2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(200000)
    y = rho * x + math.sqrt(1 - rho**2) * rng.standard_normal(200000)
    est = plugin_mutual_information(x, y, n_bins=40, bias_correction="miller_madow")
    # quantization loses a little (data processing), the finite sample adds a little
    assert abs(est - true) < 0.03
    assert gaussian_mi(np.array([[1, rho], [rho, 1]]), [0], [1]) == pytest.approx(true, rel=1e-12)


@st.composite
def covariance_and_groups(draw):
    n = draw(st.integers(2, 7))
    seed = draw(st.integers(0, 2**31 - 1))
    m = draw(st.integers(2, n))
    # a random partition of the n coordinates into m non-empty groups
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)
    cuts = sorted(rng.choice(np.arange(1, n), size=m - 1, replace=False)) if m > 1 else []
    groups = [list(map(int, g)) for g in np.split(perm, cuts)]
    a = rng.standard_normal((n, n)) * draw(st.floats(0.1, 3.0))
    cov = a @ a.T + draw(st.floats(1e-3, 1.0)) * np.eye(n)
    return cov, groups


@settings(max_examples=60, deadline=None)
@given(covariance_and_groups())
def test_tc_plus_dtc_is_sum_of_one_vs_all_and_the_sandwich_holds(case):
    cov, groups = case
    tc = gaussian_total_correlation(cov, groups)
    dtc = gaussian_dual_total_correlation(cov, groups)
    ova = gaussian_one_vs_all_mi(cov, groups)
    total, m = sum(ova), len(groups)
    tol = 1e-8 * max(1.0, total)
    assert tc + dtc == pytest.approx(total, rel=1e-8, abs=1e-9)
    assert tc >= -tol and dtc >= -tol and min(ova) >= -tol
    assert total / m - tol <= dtc <= (m - 1) / m * total + tol


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_chain_rule_of_gaussian_cmi(seed):
    cov = _random_cov(seed, 5)
    x, y, c = [0], [1, 2], [3, 4]
    assert gaussian_mi(cov, x, y + c) == pytest.approx(gaussian_mi(cov, x, c) + gaussian_cmi(cov, x, y, c),
                                                       rel=1e-8, abs=1e-10)


def test_independent_blocks_have_zero_information():
    cov = np.diag([1.0, 2.0, 3.0, 4.0])
    assert gaussian_mi(cov, [0, 1], [2, 3]) == pytest.approx(0.0, abs=1e-12)
    assert gaussian_total_correlation(cov) == pytest.approx(0.0, abs=1e-12)
    assert gaussian_dual_total_correlation(cov) == pytest.approx(0.0, abs=1e-12)


def test_bad_covariances_and_indices_raise():
    with pytest.raises(ValueError, match="square"):
        gaussian_mi(np.ones((2, 3)), [0], [1])
    with pytest.raises(ValueError, match="symmetric"):
        gaussian_mi(np.array([[1.0, 0.5], [0.0, 1.0]]), [0], [1])
    with pytest.raises(ValueError, match="positive definite"):
        gaussian_mi(np.array([[1.0, 1.0], [1.0, 1.0]]), [0], [1])
    with pytest.raises(ValueError, match="disjoint"):
        gaussian_mi(np.eye(3), [0, 1], [1])
    with pytest.raises(ValueError, match="idx_y"):
        gaussian_mi(np.eye(3), [0], [5])
    with pytest.raises(ValueError, match="NaN"):
        gaussian_mi(np.array([[1.0, np.nan], [np.nan, 1.0]]), [0], [1])
    with pytest.raises(ValueError, match="mi must"):
        correlation_for_mi(3, -1.0)
    with pytest.raises(ValueError, match="dim"):
        correlated_gaussians(10, 0, 1.0)
