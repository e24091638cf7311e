"""Bounds on a critic-score matrix vs float64 loop references; the exact claims of spec D.1.1–D.1.2."""

import math

import pytest
import torch

from mmib.info import (
    club_upper_bound,
    infonce_lower_bound,
    mine_lower_bound,
    nce_club_upper_bound,
    nwj_lower_bound,
)


def _ref_all(scores, mask=None):
    """Obviously-correct float64 loops over rows and pairs."""
    s = scores.double().tolist()
    n = len(s)
    m = [[True] * n for _ in range(n)] if mask is None else mask.tolist()
    nce = 0.0
    for i in range(n):
        cands = [s[i][j] for j in range(n) if m[i][j]]
        nce += s[i][i] - math.log(sum(math.exp(v) for v in cands)) + math.log(len(cands))
    nce /= n
    joint = sum(s[i][i] for i in range(n)) / n
    off = [s[i][j] for i in range(n) for j in range(n) if i != j and m[i][j]]
    allp = [s[i][j] for i in range(n) for j in range(n) if m[i][j]]
    nwj = joint - math.exp(-1) * sum(math.exp(v) for v in off) / len(off)
    dv = joint - math.log(sum(math.exp(v) for v in off) / len(off))
    club_all = joint - sum(allp) / len(allp)
    club_off = joint - sum(off) / len(off)
    return {"infonce": nce, "nwj": nwj, "mine": dv, "nce_club": club_all, "nce_club_offdiag": club_off}


def _fast_all(scores, mask=None):
    return {
        "infonce": infonce_lower_bound(scores, mask),
        "nwj": nwj_lower_bound(scores, mask),
        "mine": mine_lower_bound(scores, mask),
        "nce_club": nce_club_upper_bound(scores, mask),
        "nce_club_offdiag": nce_club_upper_bound(scores, mask, include_diagonal=False),
    }


@pytest.mark.parametrize("n", [2, 5, 16])
@pytest.mark.parametrize("scale", [0.1, 3.0, 20.0])
@pytest.mark.parametrize("masked", [False, True])
def test_bounds_match_float64_reference(n, scale, masked):
    g = torch.Generator().manual_seed(n)
    scores = torch.randn(n, n, generator=g, dtype=torch.float64) * scale
    mask = None
    if masked:
        labels = torch.tensor([i % 2 for i in range(n)]) if n > 2 else torch.tensor([0, 0])
        mask = labels[:, None] == labels[None, :]
    ref = _ref_all(scores, mask)
    for k, v in _fast_all(scores, mask).items():
        assert v.item() == pytest.approx(ref[k], rel=1e-10, abs=1e-10), k
    assert club_upper_bound(scores, mask).item() == pytest.approx(ref["nce_club"], rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("n", [2, 8, 64])
def test_infonce_never_exceeds_log_n_even_adversarially(n):
    # D.1.1: huge positive diagonal, hugely negative off-diagonal -> softmax prob -> 1, bound -> log N, never above
    g = torch.Generator().manual_seed(0)
    for scores in (torch.full((n, n), -1e4).fill_diagonal_(1e4), torch.randn(n, n, generator=g) * 1e3,
                   torch.eye(n) * 1e30):
        v = infonce_lower_bound(scores)
        assert torch.isfinite(v)
        assert v.item() <= math.log(n) + 1e-6
    adv = torch.full((n, n), -1e4).fill_diagonal_(1e4)
    assert infonce_lower_bound(adv).item() == pytest.approx(math.log(n), abs=1e-5)


def test_shift_invariances_d12():
    n = 12
    g = torch.Generator().manual_seed(1)
    s = torch.randn(n, n, generator=g, dtype=torch.float64)
    cx = torch.randn(n, 1, generator=g, dtype=torch.float64) * 5  # a function of x_i (rows)
    cy = torch.randn(1, n, generator=g, dtype=torch.float64) * 5  # a function of y_j (columns)
    # InfoNCE normalizes over j for fixed x_i: invariant to f + c(x_i)
    assert infonce_lower_bound(s + cx).item() == pytest.approx(infonce_lower_bound(s).item(), abs=1e-12)
    # all-pairs NCE-CLUB: invariant to f + c(x) and f + c(y), exactly
    base = nce_club_upper_bound(s).item()
    assert nce_club_upper_bound(s + cx).item() == pytest.approx(base, abs=1e-12)
    assert nce_club_upper_bound(s + cy).item() == pytest.approx(base, abs=1e-12)
    # the i != j variant is exactly invariant too without a mask (every row and column has n - 1 pairs; spec D.1.2
    # says otherwise): the diagonal mean and the off-diagonal mean both shift by mean(c)
    off = nce_club_upper_bound(s, include_diagonal=False).item()
    assert nce_club_upper_bound(s + cx, include_diagonal=False).item() == pytest.approx(off, abs=1e-12)
    assert nce_club_upper_bound(s + cy, include_diagonal=False).item() == pytest.approx(off, abs=1e-12)
    # with an unbalanced same-condition mask (groups of 3 and 9) the pooled marginal term weights rows unequally,
    # so neither variant is shift-invariant any more
    labels = torch.tensor([0] * 3 + [1] * 9)
    mask = labels[:, None] == labels[None, :]
    for diag in (True, False):
        a = nce_club_upper_bound(s, mask, include_diagonal=diag).item()
        assert abs(nce_club_upper_bound(s + cx, mask, include_diagonal=diag).item() - a) > 1e-6


def test_bounds_are_differentiable():
    s = torch.randn(6, 6, requires_grad=True)
    for v in _fast_all(s).values():
        (g,) = torch.autograd.grad(v, s)
        assert torch.isfinite(g).all()


@pytest.mark.parametrize("fn", [infonce_lower_bound, nwj_lower_bound, mine_lower_bound, nce_club_upper_bound])
def test_bad_scores_raise_clear_errors(fn):
    with pytest.raises(ValueError, match="square"):
        fn(torch.randn(3, 4))
    with pytest.raises(ValueError, match="at least 2"):
        fn(torch.randn(1, 1))
    bad = torch.randn(3, 3)
    bad[0, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        fn(bad)
    with pytest.raises(ValueError, match="diagonal"):
        fn(torch.randn(3, 3), torch.zeros(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask"):
        fn(torch.randn(3, 3), torch.ones(2, 2, dtype=torch.bool))


def test_marginal_terms_need_an_off_diagonal_pair():
    with pytest.raises(ValueError, match="product-of-marginals"):
        mine_lower_bound(torch.randn(3, 3), torch.eye(3, dtype=torch.bool))
