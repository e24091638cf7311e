"""mmib.objectives.projection.factor: per-row Gram matrices and the Cholesky factors of the tuple Gram matrices,
against float64 references that share no code with the module (autograd through an einsum, torch.linalg)."""

import pytest
import torch

import mmib.objectives.projection.factor as factor
from mmib.objectives.projection.factor import (
    SMALL_ALGEBRA_DTYPE,
    SMALL_FACTOR_MAX,
    factor_tuple_grams,
    inverse_factor_entries,
    rowwise_gram,
    small_dtype,
    tuple_gram,
)


def _spd(batch, k, seed, ridge=1e-3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*batch, k, k + 2, generator=g, dtype=torch.float64)
    return x @ x.mT + ridge * torch.eye(k, dtype=torch.float64)


def test_rowwise_gram_is_float64_and_its_backward_matches_autograd():
    g = torch.Generator().manual_seed(0)
    zs = [torch.randn(5, 7, generator=g, requires_grad=True) for _ in range(3)]
    out = rowwise_gram(zs)
    assert out.dtype == SMALL_ALGEBRA_DTYPE and out.shape == (5, 3, 3)
    z64 = [z.detach().double().requires_grad_(True) for z in zs]
    ref = torch.einsum("nid,njd->nij", torch.stack(z64, 1), torch.stack(z64, 1))
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    w = torch.randn(5, 3, 3, generator=g, dtype=torch.float64)  # not symmetric: both halves of the gradient count
    grads = torch.autograd.grad((out * w).sum(), zs)
    grads_ref = torch.autograd.grad((ref * w).sum(), z64)
    for a, b in zip(grads, grads_ref):
        assert a.dtype == torch.float32  # the backward runs in the embeddings' dtype
        torch.testing.assert_close(a.double(), b, rtol=1e-5, atol=1e-5)
    sub = rowwise_gram(zs, index=[2, 0])
    torch.testing.assert_close(sub, ref[:, [2, 0]][:, :, [2, 0]].detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(tuple_gram(zs[1:]), ref[:, 1:, 1:].detach(), rtol=1e-12, atol=1e-12)


def test_small_dtype_keeps_float64_and_lifts_the_rest():
    assert small_dtype(torch.zeros(1, dtype=torch.float64)) == torch.float64
    assert small_dtype(torch.zeros(1, dtype=torch.float32)) == SMALL_ALGEBRA_DTYPE


@pytest.mark.parametrize("k", [1, 2, SMALL_FACTOR_MAX, SMALL_FACTOR_MAX + 2])  # entry by entry, then LAPACK
def test_factor_tuple_grams_factors_the_ridged_matrix(k):
    grams = _spd((4, 3), k, k)
    ridge = 0.25
    chol, linv = factor_tuple_grams(grams.float(), ridge, "test")
    assert chol.dtype == linv.dtype == torch.float64
    kmat = grams.float().double() + ridge * torch.eye(k, dtype=torch.float64)
    torch.testing.assert_close(chol @ chol.mT, kmat, rtol=1e-10, atol=1e-12)
    assert torch.equal(chol, chol.tril()) and torch.equal(linv, linv.tril())
    torch.testing.assert_close(linv, torch.linalg.inv(chol), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8, 9])  # entry by entry up to 8, LAPACK at 9
def test_inverse_factor_entries_give_the_inverse_and_the_determinant(k):
    kmat = _spd((2, 3), k, 10 + k)
    inv, kinv, det = inverse_factor_entries(kmat, "test")
    assert len(inv) == k and all(len(row) == i + 1 for i, row in enumerate(inv))
    linv = torch.zeros(6, k, k, dtype=torch.float64)
    for i in range(k):
        for j in range(i + 1):
            linv[:, i, j] = inv[i][j]
    chol = torch.linalg.cholesky(kmat).reshape(6, k, k)
    torch.testing.assert_close(linv @ chol, torch.eye(k, dtype=torch.float64).expand(6, k, k), rtol=0, atol=1e-9)
    torch.testing.assert_close(kinv, torch.linalg.inv(kmat), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(det, torch.linalg.det(kmat).reshape(-1), rtol=1e-10, atol=0)


@pytest.mark.parametrize("k", [2, 9])
def test_a_matrix_that_is_not_positive_definite_is_refused_by_name(k):
    bad = torch.eye(k, dtype=torch.float64).repeat(3, 1, 1)
    bad[1, -1, -1] = -1.0
    with pytest.raises(ValueError, match="my measure: the tuple Gram matrix is not positive definite"):
        inverse_factor_entries(bad, "my measure")
    with pytest.raises(ValueError, match="my measure: the tuple Gram matrix is not positive definite"):
        factor_tuple_grams(bad, 0.0, "my measure")


def test_small_cholesky_matches_lapack_and_flags_bad_matrices():
    g = torch.Generator().manual_seed(2)
    for k in (1, 2, 3, 5):
        x = torch.randn(4, 6, k, k + 2, generator=g, dtype=torch.float64)
        kmat = x @ x.mT + 1e-8 * torch.eye(k, dtype=torch.float64)
        chol, linv, ok = factor._small_cholesky(kmat)
        assert ok
        torch.testing.assert_close(chol, torch.linalg.cholesky(kmat), rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(linv @ chol, torch.eye(k, dtype=torch.float64).expand_as(chol), rtol=0,
                                   atol=1e-9)
    bad = torch.eye(2, dtype=torch.float64).repeat(3, 1, 1)
    bad[1, 1, 1] = -1.0
    assert not factor._small_cholesky(bad)[2]
    assert not factor._small_cholesky(torch.full((2, 2, 2), float("nan"), dtype=torch.float64))[2]
    with pytest.raises(ValueError, match="not positive definite"):
        factor.factor_tuple_grams(bad, 1e-8, "test")
