"""mmib.objectives.ntxent: SimCLR's NT-Xent against a float64 loop reference."""

import math

import pytest
import torch

from mmib.objectives.ntxent import NTXentLoss, nt_xent


def ref_nt_xent(a, b, tau):
    """SimCLR NT-Xent by loops: 2N anchors, 2N − 1 candidates each (float64)."""
    a = [v / v.norm() for v in a.double()]
    b = [v / v.norm() for v in b.double()]
    z = a + b
    n = len(a)
    total = 0.0
    for i in range(2 * n):
        p = i + n if i < n else i - n
        den = sum(math.exp(float(z[i] @ z[k]) / tau) for k in range(2 * n) if k != i)
        total += -(float(z[i] @ z[p]) / tau - math.log(den))
    return total / (2 * n)


@pytest.mark.parametrize("n,d,tau", [(2, 3, 0.1), (7, 5, 0.5), (12, 4, 1.0)])
def test_nt_xent_matches_loop_reference(n, d, tau):
    a, b = torch.randn(n, d), torch.randn(n, d)
    got = nt_xent(a, b, 1 / tau)
    assert float(got) == pytest.approx(ref_nt_xent(a, b, tau), rel=1e-5, abs=1e-5)
    out = NTXentLoss(tau)({"u": a, "v": b})
    assert set(out.terms) == {"ntxent_u_v"}
    assert float(out.loss) == pytest.approx(float(got), rel=1e-6)


def test_nt_xent_perfect_alignment_lower_than_random():
    a = torch.randn(16, 8)
    assert float(nt_xent(a, a.clone(), 10.0)) < float(nt_xent(a, torch.randn(16, 8), 10.0))
