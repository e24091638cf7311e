"""Discrete measures and PID: spec D.0.1 identities and the D.0.2 two-bit table; numpy measures vs dit."""

import math

import dit
import numpy as np
import pytest

from mmib.errors import UnknownNameError
from mmib.info import (
    co_information,
    conditional_mutual_information,
    discretize,
    dual_total_correlation,
    entropy,
    joint_from_samples,
    mutual_information,
    pid,
    plugin_mutual_information,
    total_correlation,
)


def _two_bit(fn):
    """P(X1, X2, Y) for b1, b2 iid uniform bits and (X1, X2, Y) = fn(b1, b2)."""
    p = np.zeros((2, 2, 2))
    for b1 in (0, 1):
        for b2 in (0, 1):
            p[fn(b1, b2)] += 0.25
    return p


CASES = {
    "XOR": _two_bit(lambda a, b: (a, b, a ^ b)),
    "COPY": _two_bit(lambda a, b: (a, a, a)),
    "UNIQUE": _two_bit(lambda a, b: (a, b, a)),
    "AND": _two_bit(lambda a, b: (a, b, a & b)),
}

# spec D.0.2 (bits): I(X1,X2;Y), I(X1;Y), I(X2;Y), I(X1;X2), I(X1;X2|Y), S_FactorCL, U1_FactorCL, U2_FactorCL
TABLE = {
    "XOR": (1, 0, 0, 0, 1, -1, 1, 1),
    "COPY": (1, 1, 1, 1, 0, 1, 0, 0),
    "UNIQUE": (1, 1, 0, 0, 0, 0, 1, 0),
    "AND": (0.811, 0.311, 0.311, 0, 0.189, -0.189, 0.500, 0.500),
}
PID_EXACT = {"XOR": (0, 0, 0, 1), "COPY": (1, 0, 0, 0), "UNIQUE": (0, 1, 0, 0)}


def _row(p):
    b = 2
    return (
        mutual_information(p, (0, 1), 2, base=b),
        mutual_information(p, 0, 2, base=b),
        mutual_information(p, 1, 2, base=b),
        mutual_information(p, 0, 1, base=b),
        conditional_mutual_information(p, 0, 1, 2, base=b),
        co_information(p, base=b),
        conditional_mutual_information(p, 0, 2, 1, base=b),
        conditional_mutual_information(p, 1, 2, 0, base=b),
    )


@pytest.mark.parametrize("case", list(CASES))
def test_two_bit_table_d02(case):
    tol = 5e-4 if case == "AND" else 1e-12  # AND is printed to 3 decimals
    for got, want in zip(_row(CASES[case]), TABLE[case]):
        assert got == pytest.approx(want, abs=tol)


@pytest.mark.parametrize("method", ["wb", "broja"])
@pytest.mark.parametrize("case", ["XOR", "COPY", "UNIQUE"])
def test_pid_exact_cases(case, method):
    r = pid(CASES[case], method=method, base=2)
    # I_min is closed-form; bivariate BROJA runs dit's admUI solver (deterministic, converged to ~1e-6 bits)
    assert r.as_tuple() == pytest.approx(PID_EXACT[case], abs=1e-9 if method == "wb" else 1e-5)


def test_broja_is_deterministic_across_hash_seeds():
    """dit's default BROJA path depends on PYTHONHASHSEED (set order); ours must not."""
    import os
    import subprocess
    import sys

    code = ("import sys; sys.path.insert(0, 'tests/info'); from test_discrete import CASES; "
            "from mmib.info.discrete import pid; print(pid(CASES['AND'], method='broja', base=2).as_tuple())")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": str(h)}).stdout for h in (1, 3)}
    assert len(outs) == 1


@pytest.mark.parametrize("method", ["wb", "broja"])
def test_pid_and_gate(method):
    # AND: both I_min and BROJA give R = I(X1;Y) = 0.311, U = 0, S = 0.5 bits
    r = pid(CASES["AND"], method=method, base=2)
    assert r.redundancy == pytest.approx(0.3113, abs=1e-3)
    assert r.unique == pytest.approx((0, 0), abs=1e-4)
    assert r.synergy == pytest.approx(0.5, abs=1e-3)


def _random_joint(seed, shape=(2, 3, 2)):
    p = np.random.default_rng(seed).dirichlet(np.ones(int(np.prod(shape)))).reshape(shape)
    return p


@pytest.mark.parametrize("method", ["wb", "broja"])
@pytest.mark.parametrize("case", [*CASES, "random0", "random1"])
def test_factorcl_to_pid_identities_d01(case, method):
    p = CASES[case] if case in CASES else _random_joint(int(case[-1]))
    r = pid(p, method=method)
    # Williams-Beer is closed-form; bivariate BROJA runs dit's admUI algorithm: exact on the two-bit table, but on
    # random joints it stops short of the optimum by up to ~1e-4 nats, differently per process (dit's outcome order
    # follows Python's hash seed)
    tol = 1e-3 if method == "broja" and case not in CASES else 1e-5
    total = mutual_information(p, (0, 1), 2)
    assert sum(r.as_tuple()) == pytest.approx(total, abs=tol)  # consistency equations
    assert r.redundancy + r.unique[0] == pytest.approx(mutual_information(p, 0, 2), abs=tol)
    assert co_information(p) == pytest.approx(r.redundancy - r.synergy, abs=tol)  # S_FactorCL = R - S
    assert conditional_mutual_information(p, 0, 2, 1) == pytest.approx(r.unique[0] + r.synergy, abs=tol)
    assert conditional_mutual_information(p, 1, 2, 0) == pytest.approx(r.unique[1] + r.synergy, abs=tol)


@pytest.mark.parametrize("seed", range(4))
def test_measures_agree_with_dit(seed):
    p = _random_joint(seed, (2, 3, 2))
    d = dit.Distribution.from_ndarray(p)
    d.set_rv_names("XYZ")
    assert entropy(p, base=2) == pytest.approx(dit.shannon.entropy(d), abs=1e-10)
    assert mutual_information(p, 0, 1, base=2) == pytest.approx(dit.shannon.mutual_information(d, "X", "Y"), abs=1e-10)
    assert conditional_mutual_information(p, 0, 1, 2, base=2) == pytest.approx(
        dit.multivariate.coinformation(d, ["X", "Y"], "Z"), abs=1e-10)
    assert co_information(p, base=2) == pytest.approx(dit.multivariate.coinformation(d), abs=1e-10)
    assert total_correlation(p, base=2) == pytest.approx(dit.multivariate.total_correlation(d), abs=1e-10)
    assert dual_total_correlation(p, base=2) == pytest.approx(dit.multivariate.dual_total_correlation(d), abs=1e-10)


def test_units_and_grouped_variables():
    p = _random_joint(7, (2, 2, 3))
    assert entropy(p) == pytest.approx(entropy(p, base=2) * math.log(2), rel=1e-12)
    # grouping axes 0 and 1 into one variable: TC of two variables is their MI
    assert total_correlation(p, [(0, 1), 2]) == pytest.approx(mutual_information(p, (0, 1), 2), abs=1e-12)
    assert dual_total_correlation(p, [(0, 1), 2]) == pytest.approx(mutual_information(p, (0, 1), 2), abs=1e-12)
    r = pid(CASES["XOR"], method="wb")  # nats by default
    assert r.synergy == pytest.approx(math.log(2), abs=1e-9)


def test_joint_from_samples_and_discretize():
    a = np.array([0, 0, 1, 1])
    b = np.array([5, 7, 5, 7])
    p = joint_from_samples(a, b)
    assert p.shape == (2, 2) and np.allclose(p, 0.25)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((3000, 2))
    codes = discretize(z, n_bins=4, method="quantile")
    assert codes.max() + 1 <= 16
    counts = np.bincount(discretize(z[:, 0], n_bins=4))
    assert counts.min() >= 740 and counts.max() <= 760  # equal-frequency bins
    km = discretize(z, n_bins=5, method="kmeans")
    assert set(np.unique(km)) == set(range(5))
    assert discretize(z, n_bins=3, method="uniform").max() + 1 <= 9


def test_plugin_on_independent_data_and_bias_correction():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal(2000), rng.standard_normal(2000)
    raw = plugin_mutual_information(x, y, n_bins=10)
    mm = plugin_mutual_information(x, y, n_bins=10, bias_correction="miller_madow")
    assert 0 < raw < 0.05 and abs(mm) < raw
    # discrete integer inputs are used as they are
    b = rng.integers(0, 2, 5000)
    assert plugin_mutual_information(b, b, base=2) == pytest.approx(1.0, abs=1e-3)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="sum to 1"):
        entropy(np.ones((2, 2)))
    with pytest.raises(ValueError, match="negative"):
        entropy(np.array([1.5, -0.5]))
    with pytest.raises(ValueError, match="NaN"):
        entropy(np.array([np.nan, 1.0]))
    with pytest.raises(ValueError, match="disjoint"):
        mutual_information(CASES["XOR"], 0, (0, 1))
    with pytest.raises(ValueError, match="axes"):
        mutual_information(CASES["XOR"], 0, 5)
    with pytest.raises(ValueError, match="base"):
        entropy(CASES["XOR"], base=1)
    with pytest.raises(UnknownNameError, match="broja"):
        pid(CASES["XOR"], method="nope")
    with pytest.raises(ValueError, match="n_bins"):
        discretize(np.zeros(5), n_bins=1)
    with pytest.raises(ValueError, match="NaN"):
        discretize(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="same number"):
        joint_from_samples(np.zeros(3), np.zeros(4))
