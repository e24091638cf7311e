"""mmib.objectives.ntxent: SimCLR's NT-Xent against a float64 loop reference (objectives_reference.nt_xent_ref)."""

import pytest
import torch
from objectives_reference import nt_xent_ref

from mmib.objectives.ntxent import NTXentLoss, nt_xent


@pytest.mark.parametrize("n,d,tau", [(2, 3, 0.1), (7, 5, 0.5), (12, 4, 1.0)])
def test_nt_xent_matches_loop_reference(n, d, tau):
    a, b = torch.randn(n, d), torch.randn(n, d)
    got = nt_xent(a, b, 1 / tau)
    assert float(got) == pytest.approx(float(nt_xent_ref(a.double(), b.double(), tau)), rel=1e-5, abs=1e-5)
    out = NTXentLoss(tau)({"u": a, "v": b})
    assert set(out.terms) == {"ntxent_u_v"}
    assert float(out.loss) == pytest.approx(float(got), rel=1e-6)


def test_nt_xent_perfect_alignment_lower_than_random():
    a = torch.randn(16, 8)
    assert float(nt_xent(a, a.clone(), 10.0)) < float(nt_xent(a, torch.randn(16, 8), 10.0))
