"""Gram matrices and Cholesky factors of the small tuple algebra shared by OVA-IB's projection score and GRAM's
volume.

Per-row Gram matrices of the embeddings (:func:`rowwise_gram`: float64 forward, backward in the embeddings' dtype),
the Cholesky factor L of K = AᵀA + λI and its inverse L⁻¹ (:func:`factor_tuple_grams`), written out entry by entry
for small k on the CPU (:func:`_small_cholesky_entries`), and the entries of L⁻¹, K⁻¹ and det K for the fused sweeps
(:func:`inverse_factor_entries`). The small algebra runs in float64 (:data:`SMALL_ALGEBRA_DTYPE`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

#: dtype of the (M−1)×(M−1) algebra of the projection score
SMALL_ALGEBRA_DTYPE = torch.float64


def small_dtype(t: torch.Tensor) -> torch.dtype:
    return SMALL_ALGEBRA_DTYPE if t.dtype != torch.float64 else torch.float64


def tuple_gram(tuple_embeddings: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-sample Gram matrices K_n = A_nᵀ A_n of a tuple of k embeddings (each (N, d)) → (N, k, k), in float64.

    Computed in float64 (O(N k² d), negligible) so that it is positive semi-definite to float64 precision even for
    nearly collinear tuples, which a float32 Gram matrix is not.
    """
    return rowwise_gram(tuple_embeddings)


def rowwise_gram(embeddings: Sequence[torch.Tensor], index: Sequence[int] | None = None) -> torch.Tensor:
    """Per-row Gram matrices of all M embeddings (each (N, d)) → (N, M, M) in float64; ``index`` selects a sub-tuple.

    The forward is one float64 batched matmul; the backward, ∂L/∂A_n = (Ḡ_n + Ḡ_nᵀ) A_n, runs in the embeddings'
    dtype (:class:`_RowwiseGram`).
    """
    g = _RowwiseGram.apply(*embeddings)
    if index is not None:
        idx = torch.as_tensor(list(index), device=g.device)
        g = g[:, idx][:, :, idx]
    return g


class _RowwiseGram(torch.autograd.Function):
    """G_n = A_n A_nᵀ (A_n = the n-th rows of the M embeddings) in float64, with a backward in the input dtype."""

    @staticmethod
    def forward(ctx, *embeddings):  # noqa: D102
        a = torch.stack(list(embeddings), dim=1)  # (N, M, d)
        a64 = a.to(small_dtype(a))
        ctx.save_for_backward(a)
        return a64 @ a64.mT

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_g):  # noqa: D102
        (a,) = ctx.saved_tensors
        grad_a = (grad_g + grad_g.mT).to(a.dtype) @ a
        return tuple(grad_a.unbind(1))


def factor_tuple_grams(grams: torch.Tensor, ridge: float, what: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Cholesky factor L of K = grams + ridge·I (float64) and its inverse L⁻¹ (lower), both (..., k, k).

    For k ≤ :data:`SMALL_FACTOR_MAX` on the CPU the factorization and the inversion are written out entry by entry,
    each step one vectorized operation over the whole batch (:func:`_small_cholesky`): 2–3× faster than LAPACK's
    per-matrix calls (``torch.linalg.cholesky_ex`` + ``solve_triangular``) there; larger k use LAPACK.

    Raises:
        ValueError: (naming ``what``) if a K is not positive definite (NaN or inf embeddings).
    """
    k = grams.shape[-1]
    work = small_dtype(grams)
    eye = torch.eye(k, dtype=work, device=grams.device)
    kmat = grams.to(work) + ridge * eye
    if k <= SMALL_FACTOR_MAX and grams.device.type == "cpu":
        chol, linv, ok = _small_cholesky(kmat)
    else:
        chol, info = torch.linalg.cholesky_ex(kmat)
        ok = bool((info == 0).all())
        linv = torch.linalg.solve_triangular(chol, eye.expand_as(chol), upper=False) if ok else None
    if not ok:
        raise ValueError(f"{what}: the tuple Gram matrix is not positive definite (NaN or inf embeddings?)")
    return chol, linv


#: the largest tuple size k whose Cholesky factor :func:`factor_tuple_grams` computes entry by entry (measured:
#: 2–3× faster than LAPACK at k = 2, 3; even at k = 5, where assembling the (.., k, k) matrices costs what it saves)
SMALL_FACTOR_MAX = 3


def _small_cholesky(kmat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(L, L⁻¹, ok) of a batch of small symmetric matrices (..., k, k): K = L Lᵀ, L lower-triangular with a positive
    diagonal; ``ok`` is False if a pivot is not positive (K not positive definite, NaN or inf)."""
    el, inv, ok = _small_cholesky_entries(kmat)
    batch = kmat.shape[:-2]
    return _entries_to_matrices(el, batch), _entries_to_matrices(inv, batch), ok


def _small_cholesky_entries(kmat: torch.Tensor) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]], bool]:
    """:func:`_small_cholesky` as entries: ``L[i][j]`` and ``L⁻¹[i][j]`` (j ≤ i; the lists hold only those) are
    contiguous vectors over the flattened batch. The matrices are transposed to (k, k, batch) once, so that every
    step is one elementwise operation over the whole batch."""
    k = kmat.shape[-1]
    return _cholesky_entries_kkb(kmat.reshape(-1, k, k).permute(1, 2, 0).contiguous())


def _cholesky_entries_kkb(kt: torch.Tensor) -> tuple[list[list[torch.Tensor]], list[list[torch.Tensor]], bool]:
    """:func:`_small_cholesky_entries` of matrices laid out entry-major, ``kt`` (k, k, batch) contiguous."""
    k = kt.shape[0]
    el: list[list[torch.Tensor]] = [[] for _ in range(k)]
    ok = True
    for j in range(k):
        piv = kt[j, j].clone()
        for p in range(j):
            piv.addcmul_(el[j][p], el[j][p], value=-1.0)
        ok = ok and bool(piv.gt(0).all())  # False for NaN pivots too
        ljj = piv.clamp_min_(1e-300).sqrt_()
        el[j].append(ljj)
        rinv = ljj.reciprocal()
        for i in range(j + 1, k):
            acc = kt[i, j].clone()
            for p in range(j):
                acc.addcmul_(el[i][p], el[j][p], value=-1.0)
            el[i].append(acc.mul_(rinv))
    inv: list[list[torch.Tensor]] = [[] for _ in range(k)]
    for i in range(k):  # forward substitution: L⁻¹[i][j] = −(Σ_{j≤p<i} L[i][p] L⁻¹[p][j]) / L[i][i]
        rdiag = el[i][i].reciprocal()
        for j in range(i):
            acc = el[i][j] * inv[j][j]
            for p in range(j + 1, i):
                acc.addcmul_(el[i][p], inv[p][j])
            inv[i].append(acc.mul_(rdiag).neg_())
        inv[i].append(rdiag)
    return el, inv, ok


def _entries_to_matrices(entries: list[list[torch.Tensor]], batch: torch.Size) -> torch.Tensor:
    """Lower-triangular entries (vectors over the flattened batch) → (*batch, k, k)."""
    k = len(entries)
    zero = torch.zeros_like(entries[0][0])
    flat = torch.stack([entries[i][j] if j <= i else zero for i in range(k) for j in range(k)])  # (k², B)
    return flat.T.contiguous().reshape(*batch, k, k)


def inverse_factor_entries(kmat: torch.Tensor, what: str) -> tuple[list[list[torch.Tensor]], torch.Tensor,
                                                                     torch.Tensor]:
    """Entries of L⁻¹ (K = L Lᵀ, float64) as vectors over the flattened batch (``inv[i][j]``, j ≤ i), K⁻¹ as
    (..., k, k) matrices and det K (flattened batch). Entry by entry (:func:`_small_cholesky_entries`) up to
    k = 8, LAPACK above.

    Raises:
        ValueError: (naming ``what``) if a K is not positive definite (NaN or inf embeddings).
    """
    k = kmat.shape[-1]
    if k <= 8 and kmat.device.type == "cpu":
        return inverse_factor_entries_kkb(kmat.reshape(-1, k, k).permute(1, 2, 0).contiguous(), kmat.shape[:-2],
                                          what)
    eye = torch.eye(k, dtype=kmat.dtype, device=kmat.device)
    chol, info = torch.linalg.cholesky_ex(kmat)
    if bool((info > 0).any()):
        raise ValueError(f"{what}: the tuple Gram matrix is not positive definite (NaN or inf embeddings?)")
    linv = torch.linalg.solve_triangular(chol, eye.expand_as(chol), upper=False)
    flat = linv.reshape(-1, k, k)
    inv = [[flat[:, i, j].contiguous() for j in range(i + 1)] for i in range(k)]
    diag = torch.diagonal(chol, dim1=-2, dim2=-1).reshape(-1, k)
    return inv, linv.mT @ linv, diag.prod(1) ** 2


def inverse_factor_entries_kkb(kt: torch.Tensor, batch: torch.Size, what: str):
    """:func:`inverse_factor_entries` of matrices laid out entry-major, ``kt`` (k, k, B) contiguous (B = the
    flattened ``batch``), on the CPU: K⁻¹ = L⁻ᵀL⁻¹ and det K = (Π L_jj)² from the entries, each step one elementwise
    operation over the batch (no per-matrix products); K⁻¹ is returned as (*batch, k, k)."""
    k = kt.shape[0]
    el, inv, ok = _cholesky_entries_kkb(kt)
    if not ok:
        raise ValueError(f"{what}: the tuple Gram matrix is not positive definite (NaN or inf embeddings?)")
    kinv = kt.new_empty(k, k, kt.shape[-1])
    for i in range(k):  # (K⁻¹)_ij = Σ_{p ≥ max(i, j)} (L⁻¹)_pi (L⁻¹)_pj
        for j in range(i + 1):
            e = torch.mul(inv[i][i], inv[i][j], out=kinv[i, j])
            for p in range(i + 1, k):
                e.addcmul_(inv[p][i], inv[p][j])
            if j < i:
                kinv[j, i] = e
    det = el[0][0] * el[0][0]
    for j in range(1, k):
        det.mul_(el[j][j]).mul_(el[j][j])
    return inv, kinv.permute(2, 0, 1).reshape(*batch, k, k), det
