"""CoMM's loss and NT-Xent against float64 loop references (spec B.4, D.3.6)."""

import pytest
import torch
from objectives_reference import nt_xent_ref

from mmib.objectives.comm import CoMMLoss
from mmib.objectives.ntxent import nt_xent


def ref_comm(full, uni, tau, terms="all", reduction="sum"):
    def ref_nt_xent(a, b, tau):  # float64 loops
        return float(nt_xent_ref(a.double(), b.double(), tau))

    t = {}
    if terms != "unimodal":
        t["L_full"] = ref_nt_xent(full[0], full[1], tau)
    if terms != "full":
        for m, (u1, u2) in uni.items():
            t[f"L_{m}"] = 0.5 * (ref_nt_xent(u1, full[1], tau) + ref_nt_xent(u2, full[0], tau))
    total = sum(t.values())
    return (total / len(t) if reduction == "mean" else total), t


@pytest.mark.parametrize("terms", ["all", "full", "unimodal"])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("m", [1, 2, 3])
def test_comm_loss_fast_path_matches_reference(terms, reduction, m):
    n, d, tau = 6, 5, 0.2
    full = (torch.randn(n, d), torch.randn(n, d))
    uni = {f"m{i}": (torch.randn(n, d), torch.randn(n, d)) for i in range(m)}
    loss = CoMMLoss(tau, terms=terms, reduction=reduction)
    out = loss(full, uni)
    want, want_terms = ref_comm(full, uni, tau, terms, reduction)
    assert float(out.loss) == pytest.approx(want, rel=1e-5)
    assert set(out.terms) == set(want_terms)  # exact term list: L_full and one L_i per modality
    for k, v in want_terms.items():
        assert float(out.terms[k]) == pytest.approx(v, rel=1e-5)
    assert float(loss.reference(full, uni).loss) == pytest.approx(want, rel=1e-5)


def test_comm_loss_term_count_grows_linearly_with_modalities():
    n, d = 4, 3
    for m in (2, 3, 5):
        uni = {f"m{i}": (torch.randn(n, d), torch.randn(n, d)) for i in range(m)}
        out = CoMMLoss()((torch.randn(n, d), torch.randn(n, d)), uni)
        assert len(out.terms) == 1 + m


def test_comm_loss_gradients_match_reference_path():
    n, d = 8, 6
    leaves = [torch.randn(n, d, dtype=torch.float64, requires_grad=True) for _ in range(6)]
    full, uni = (leaves[0], leaves[1]), {"a": (leaves[2], leaves[3]), "b": (leaves[4], leaves[5])}
    loss = CoMMLoss(0.1)
    g_fast = torch.autograd.grad(loss(full, uni).loss, leaves)
    g_ref = torch.autograd.grad(loss.reference(full, uni).loss, leaves)
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b)


def test_comm_loss_bad_input():
    with pytest.raises(ValueError, match="temperature"):
        CoMMLoss(0.0)
    with pytest.raises(ValueError, match="terms"):
        CoMMLoss(terms="both")
    with pytest.raises(ValueError, match="reduction"):
        CoMMLoss(reduction="max")
    with pytest.raises(ValueError, match="shape"):
        CoMMLoss()((torch.randn(4, 3), torch.randn(4, 3)), {"a": (torch.randn(4, 2), torch.randn(4, 2))})
    with pytest.raises(ValueError, match="at least one modality"):
        CoMMLoss()((torch.randn(4, 3), torch.randn(4, 3)), {})
    with pytest.raises(ValueError, match="at least 2 samples"):
        CoMMLoss()((torch.randn(1, 3), torch.randn(1, 3)), {"a": (torch.randn(1, 3), torch.randn(1, 3))})
    with pytest.raises(ValueError, match="at least 2 samples"):
        nt_xent(torch.randn(1, 3), torch.randn(1, 3), 1.0)
