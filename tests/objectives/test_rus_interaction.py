"""The functional-ANOVA (Hoeffding) interaction of ``rus``'s ``synergy: interaction`` (issue 20): the partner
estimators against float64 loops, and the closed form for a bilinear g (the interaction of eᵀWf is the centered
product (e − ē)ᵀW(f − f̄)); an additive g has no interaction."""

import numpy as np
import pytest
import torch

from mmib.objectives.rus import (
    double_center,
    interaction_from_partners,
    interaction_with_reference,
    random_derangements,
)


def _bilinear(a, b, w):  # g(a_i, b_j)[c] = a_iᵀ W_c b_j, all pairs: (Na, Nb, d)
    return torch.einsum("ip,cpq,jq->ijc", a, w, b)


def test_derangements_have_no_fixed_point_and_are_permutations():
    g = torch.Generator().manual_seed(0)
    p = random_derangements(7, 50, g)
    assert p.shape == (50, 7) and p.dtype == torch.long
    assert bool((p != torch.arange(7)).all())
    assert bool((p.sort(1).values == torch.arange(7)).all())
    assert len({tuple(r.tolist()) for r in p}) > 10  # random, not one fixed cycle
    assert torch.equal(random_derangements(2, 1), torch.tensor([[1, 0]]))
    with pytest.raises(ValueError, match="n >= 2"):
        random_derangements(1, 3)
    with pytest.raises(ValueError, match="k >= 1"):
        random_derangements(5, 0)


def test_double_center_of_a_bilinear_g_is_the_centered_product():
    rng = np.random.default_rng(0)
    a, b = torch.tensor(rng.normal(size=(9, 3))), torch.tensor(rng.normal(size=(11, 4)))
    w = torch.tensor(rng.normal(size=(2, 3, 4)))
    s = double_center(_bilinear(a, b, w))
    closed = _bilinear(a - a.mean(0), b - b.mean(0), w)
    torch.testing.assert_close(s, closed, rtol=1e-10, atol=1e-10)
    # zero partner mean given either argument
    torch.testing.assert_close(s.mean(1), torch.zeros(9, 2, dtype=s.dtype), rtol=0, atol=1e-12)
    torch.testing.assert_close(s.mean(0), torch.zeros(11, 2, dtype=s.dtype), rtol=0, atol=1e-12)
    # an additive g(a, b) = u(a) + v(b) has no interaction
    u, v = torch.tensor(rng.normal(size=(9, 1, 2))), torch.tensor(rng.normal(size=(1, 11, 2)))
    torch.testing.assert_close(double_center(u + v), torch.zeros(9, 11, 2, dtype=u.dtype), rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="N_a, N_b, d"):
        double_center(torch.zeros(3, 3))


def test_interaction_with_reference_against_a_loop_and_the_bilinear_closed_form():
    rng = np.random.default_rng(1)
    n, r, d = 5, 6, 2
    aq, bq = rng.normal(size=(n, 3)), rng.normal(size=(n, 4))
    ar, br = rng.normal(size=(r, 3)), rng.normal(size=(r, 4))
    w = rng.normal(size=(d, 3, 4))

    def g(x, y):
        return np.einsum("p,cpq,q->c", x, w, y) + np.sin(x).sum() * np.cos(y[:d])  # bilinear + a non-linear part

    diag = np.stack([g(aq[i], bq[i]) for i in range(n)])
    rows = np.stack([[g(aq[i], br[k]) for k in range(r)] for i in range(n)])
    cols = np.stack([[g(ar[k], bq[i]) for k in range(r)] for i in range(n)])
    ref = np.stack([[g(ar[k], br[j]) for j in range(r)] for k in range(r)])
    want = np.stack([diag[i] - rows[i].mean(0) - cols[i].mean(0) + ref.mean((0, 1)) for i in range(n)])
    got = interaction_with_reference(*(torch.tensor(v) for v in (diag, rows, cols, ref)))
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)
    # bilinear g: the product of the deviations from the reference means
    wt = torch.tensor(w)

    def gb(x, y):
        return _bilinear(torch.tensor(x), torch.tensor(y), wt)

    got = interaction_with_reference(gb(aq, bq).diagonal(0, 0, 1).T, gb(aq, br), gb(ar, bq).transpose(0, 1),
                                     gb(ar, br))
    closed = _bilinear(torch.tensor(aq - ar.mean(0)), torch.tensor(bq - br.mean(0)), wt).diagonal(0, 0, 1).T
    torch.testing.assert_close(got, closed, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="ref must be"):
        interaction_with_reference(torch.zeros(n, d), torch.zeros(n, r, d), torch.zeros(n, r, d),
                                   torch.zeros(r, r + 1, d))


def test_interaction_from_partners_against_a_loop():
    rng = np.random.default_rng(2)
    n, k, d = 6, 3, 2
    gm = rng.normal(size=(n, n, d))  # any g, given as the table of g(a_i, b_j)
    perms = random_derangements(n, k, torch.Generator().manual_seed(3))
    p = perms.numpy()
    diag = np.stack([gm[i, i] for i in range(n)])
    mism = np.stack([[gm[i, p[kk, i]] for i in range(n)] for kk in range(k)])
    want = []
    for i in range(n):
        row = np.mean([gm[i, p[kk, i]] for kk in range(k)], axis=0)
        col = np.mean([gm[j, i] for kk in range(k) for j in range(n) if p[kk, j] == i], axis=0)
        grand = np.mean([gm[j, p[kk, j]] for kk in range(k) for j in range(n)], axis=0)
        want.append(gm[i, i] - row - col + grand)
    got = interaction_from_partners(torch.tensor(diag), torch.tensor(mism), perms)
    np.testing.assert_allclose(got.numpy(), np.stack(want), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="partners must be"):
        interaction_from_partners(torch.tensor(diag), torch.tensor(mism), perms[:, :-1])
