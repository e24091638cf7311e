"""mmib.objectives.projection.pairs: the one-vs-rest machinery of the fused sweeps, against float64 references that
share no code with it (explicit matmuls, torch.linalg, autograd)."""

import pytest
import torch

from mmib.objectives.projection.pairs import (
    anchor_slots,
    lower_inplace,
    lower_into,
    others_of,
    pair_backward,
    pair_cross,
    tuple_factors,
    upper_inplace,
)


def _zs(m, n=5, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, generator=g, dtype=torch.float64) for _ in range(m)]


def test_others_and_slots():
    assert others_of(3) == [[1, 2], [0, 2], [0, 1]]
    for m in (2, 4):
        slots = anchor_slots(m)
        for a in range(m):
            assert [slots[a][b] for b in others_of(m)[a]] == list(range(m - 1))


@pytest.mark.parametrize("m", [2, 3, 4])
def test_pair_cross_holds_every_anchor_against_every_other_modality(m):
    zs = _zs(m)
    cross = pair_cross(zs)
    assert cross.shape == (m, m - 1, 5, 5)
    for a in range(m):
        for i, b in enumerate(others_of(m)[a]):
            torch.testing.assert_close(cross[a, i], zs[a] @ zs[b].T, rtol=0, atol=1e-12)


def _lower(k, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 7, k, k, generator=g, dtype=torch.float64).tril()  # (A, N, k, k): per anchor, candidate


@pytest.mark.parametrize("k", [1, 2, 3])
def test_triangular_products_in_place_and_into(k):
    # arrays (A, rows, N), coefficients coef[i][j] (A, 1, N): y = L x and w = Lᵀ x per (anchor, candidate)
    lmat = _lower(k, k)
    coef = [[lmat[:, :, i, j].unsqueeze(1) for j in range(i + 1)] for i in range(k)]
    x = torch.randn(k, 2, 3, 7, dtype=torch.float64)  # (k, A, rows, N)
    y_ref = torch.einsum("anij,ajrn->ianr", lmat, x.permute(1, 0, 2, 3)).permute(0, 1, 3, 2)
    w_ref = torch.einsum("anji,ajrn->ianr", lmat, x.permute(1, 0, 2, 3)).permute(0, 1, 3, 2)
    ys = [t.clone() for t in x]
    lower_inplace(ys, coef)
    out = [torch.empty_like(t) for t in x]
    lower_into(list(x), coef, out)
    ws = [t.clone() for t in x]
    upper_inplace(ws, coef)
    for i in range(k):
        torch.testing.assert_close(ys[i], y_ref[i], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(out[i], y_ref[i], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(ws[i], w_ref[i], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("m", [2, 3, 5])
def test_tuple_factors_of_the_one_vs_rest_tuples(m):
    zs = _zs(m, seed=m)
    ridge = 0.1
    zstack, full, inv, kinv, det = tuple_factors(zs, ridge, "test")
    assert torch.equal(zstack, torch.stack(zs, 1))
    torch.testing.assert_close(full, torch.stack(zs, 1) @ torch.stack(zs, 1).mT, rtol=0, atol=1e-12)
    for a in range(m):
        o = others_of(m)[a]
        tup = torch.stack([zs[b] for b in o], 1)  # (N, k, d)
        kmat = tup @ tup.mT + ridge * torch.eye(m - 1, dtype=torch.float64)
        torch.testing.assert_close(kinv[a], torch.linalg.inv(kmat), rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(det.view(m, -1)[a], torch.linalg.det(kmat), rtol=1e-10, atol=0)


@pytest.mark.parametrize("m", [2, 3, 4])
@pytest.mark.parametrize("rows", [False, True])
def test_pair_backward_is_the_gradient_of_the_linear_functional(m, rows):
    # L = Σ_a cx[a] Σ_i <Dc[a, i], Z_a Z_{o(a, i)}ᵀ> + Σ_a cg[a] Σ_n (<GK[a, n], K_a[n]> + GS[a, n] ‖z_a[n]‖²)
    #     + Σ_n <R, G_n>, with K_a[n] the Gram matrix of the other modalities' rows n and G_n that of all M
    g = torch.Generator().manual_seed(10 + m)
    n, d, k = 5, 4, m - 1
    zs = [z.requires_grad_(True) for z in _zs(m, n, d, seed=m)]
    dc = torch.randn(m, k, n, n, generator=g, dtype=torch.float64)
    cx = torch.randn(m, generator=g, dtype=torch.float64).tolist()
    cg = torch.randn(m, generator=g, dtype=torch.float64)
    gk = torch.randn(m, n, k, k, generator=g, dtype=torch.float64)
    gs = torch.randn(m, n, generator=g, dtype=torch.float64)
    r = torch.randn(m, m, generator=g, dtype=torch.float64) if rows else None
    total = 0.0
    for a in range(m):
        o = others_of(m)[a]
        for i, b in enumerate(o):
            total = total + cx[a] * (dc[a, i] * (zs[a] @ zs[b].T)).sum()
        ka = torch.einsum("nid,njd->nij", torch.stack([zs[b] for b in o], 1), torch.stack([zs[b] for b in o], 1))
        total = total + cg[a] * ((gk[a] * ka).sum() + (gs[a] * (zs[a] * zs[a]).sum(-1)).sum())
    if rows:
        st = torch.stack(zs, 1)
        total = total + (r * (st @ st.mT)).sum()
    expected = torch.autograd.grad(total, zs)
    zd = [z.detach() for z in zs]
    got = pair_backward(dc.clone(), zd, torch.stack(zd, 1), cx, cg, gk, gs, r)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
