"""The one-vs-rest machinery of the fused sweeps over all anchors (OVA-IB's
:class:`mmib.objectives.projection.one_vs_all._OneVsAllSufficiency`, GRAM's
:class:`mmib.objectives.projection.all_anchors._GramAllAnchors`): the cross entries of every anchor from one Gram
matmul per pair of modalities (:func:`pair_cross`), the Cholesky factors of the M one-vs-rest tuples
(:func:`tuple_factors`), multiplication by L⁻¹ and L⁻ᵀ in place (:func:`lower_inplace`, :func:`upper_inplace`) and
the embeddings' gradients from the sweeps' partial derivatives (:func:`pair_backward`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mmib.objectives.projection import numba_kernels
from mmib.objectives.projection.factor import inverse_factor_entries, inverse_factor_entries_kkb, small_dtype
from mmib.objectives.projection.layout import profile_pass


def others_of(m: int) -> list[list[int]]:
    return [[b for b in range(m) if b != a] for a in range(m)]


def anchor_slots(m: int) -> list[dict[int, int]]:
    """slots[a][b]: the index of modality b among anchor a's tuple (the other modalities in order)."""
    return [{b: i for i, b in enumerate(o)} for o in others_of(m)]


def lower_into(xs: Sequence[torch.Tensor], coef: list[list[torch.Tensor]], out: Sequence[torch.Tensor]) -> None:
    """out[i] = Σ_{j≤i} coef[i][j] · xs[j] (arrays (A, rows, N); coef[i][j]: (A, 1, N))."""
    for i in range(len(xs)):
        oi = torch.mul(xs[0], coef[i][0], out=out[i])
        for j in range(1, i + 1):
            oi.addcmul_(xs[j], coef[i][j])


def lower_inplace(xs: Sequence[torch.Tensor], coef: list[list[torch.Tensor]]) -> None:
    """xs[i] ← Σ_{j≤i} coef[i][j] · xs[j] in place (descending i: xs[i] is read by no earlier row)."""
    for i in reversed(range(len(xs))):
        xi = xs[i].mul_(coef[i][i])
        for j in range(i):
            xi.addcmul_(xs[j], coef[i][j])


def upper_inplace(ys: Sequence[torch.Tensor], coef: list[list[torch.Tensor]]) -> None:
    """ys[i] ← Σ_{j≥i} coef[j][i] · ys[j] in place (ascending i: ys[i] is read by no later row)."""
    k = len(ys)
    for i in range(k):
        yi = ys[i].mul_(coef[i][i])
        for j in range(i + 1, k):
            yi.addcmul_(ys[j], coef[j][i])


def pair_cross(zs: Sequence[torch.Tensor]) -> torch.Tensor:
    """(M, M−1, N, N) cross entries, anchor-major: ``cross[a, i] = Z_a Z_bᵀ`` for b the i-th of the other
    modalities. One matmul per pair of modalities (pairwise CLIP's), its transpose copied for the other anchor."""
    m, n = len(zs), zs[0].shape[0]
    slots = anchor_slots(m)
    cross = zs[0].new_empty(m, m - 1, n, n)
    with profile_pass("gram matmuls"):
        for a in range(m):
            for b in range(a + 1, m):
                torch.mm(zs[a], zs[b].T, out=cross[a, slots[a][b]])
    with profile_pass("transposed copies"):
        for a in range(m):
            for b in range(a + 1, m):
                cross[b, slots[b][a]].copy_(cross[a, slots[a][b]].T)
    return cross


def tuple_factors(zs: Sequence[torch.Tensor], ridge: float, what: str):
    """``(zstack (N, M, d), full (N, M, M) per-row Gram matrices in float64, inv, K⁻¹ (M, N, k, k), det K (M·N,))``
    for the M one-vs-rest tuples: K = (Gram of the other modalities) + ridge·I per anchor and candidate; ``inv``
    the entries of L⁻¹ as vectors over (anchor, candidate) (:func:`inverse_factor_entries`)."""
    m, k = len(zs), len(zs) - 1
    zstack = torch.stack(zs, 1)  # (N, M, d)
    z64 = zstack.to(small_dtype(zstack))
    full = z64 @ z64.mT
    n = full.shape[0]
    idx = torch.as_tensor(others_of(m), device=full.device).T  # (k, M): idx[i, a] = the i-th other modality of a
    if k <= 8 and full.device.type == "cpu":  # the K entries laid out (k, k, M·N) directly
        kt = full.permute(1, 2, 0)[idx[:, None, :], idx[None, :, :]]  # (k, k, M, N)
        kt.diagonal(0, 0, 1).add_(ridge)
        inv, kinv, det = inverse_factor_entries_kkb(kt.reshape(k, k, m * n), torch.Size((m, n)), what)
    else:
        eye = torch.eye(k, dtype=full.dtype, device=full.device)
        kmat = full[:, idx.T[:, :, None], idx.T[:, None, :]].transpose(0, 1) + ridge * eye  # (M, N, k, k)
        inv, kinv, det = inverse_factor_entries(kmat, what)
    return zstack, full, inv, kinv, det


def tuple_factors_numba(zs: Sequence[torch.Tensor], ridge: float, what: str):
    """:func:`tuple_factors` for the numba sweeps (:func:`numba_kernels.tuple_factors`, one kernel):
    ``(zstack, full, L⁻¹ (M, k, k, N), K⁻¹ (M, k, k, N), both in the embeddings' dtype, K⁻¹ (M, N, k, k) and
    det K (M, N) in float64)``.

    Raises:
        ValueError: (naming ``what``) if a K is not positive definite (NaN or inf embeddings).
    """
    m, k, n = len(zs), len(zs) - 1, zs[0].shape[0]
    zstack = torch.stack(zs, 1)  # (N, M, d)
    full = zstack.new_empty(n, m, m, dtype=torch.float64)
    numba_kernels.row_grams(zstack.numpy(), full.numpy())  # no float64 copy of the embeddings
    linv = zs[0].new_zeros(m, k, k, n)
    kin = zs[0].new_empty(m, k, k, n)
    kinv = full.new_empty(m, n, k, k)
    det = full.new_empty(m, n)
    others = np.asarray(others_of(m), dtype=np.int64).reshape(m, k)
    if not numba_kernels.tuple_factors(full.numpy(), others, ridge, linv.numpy(), kin.numpy(), kinv.numpy(),
                                       det.numpy()):
        raise ValueError(f"{what}: the tuple Gram matrix is not positive definite (NaN or inf embeddings?)")
    return zstack, full, linv, kin, kinv, det


def pair_backward(cross, zs, zstack, cx, cg, grad_k, grad_sq, g_rows=None) -> list[torch.Tensor]:
    """Gradients of the M embeddings from a fused one-vs-rest pass: ``cross[a, i]`` holds ∂L_a/∂(cross entries)
    per unit of ``cx[a]``; ``grad_k`` (M, N, k, k) ∂L_a/∂K and ``grad_sq`` (M, N) ∂L_a/∂‖z_a‖² per unit of ``cg[a]``;
    ``g_rows`` (M, M): a gradient w.r.t. every row's Gram matrix (added to each row)."""
    m, n = cross.shape[0], cross.shape[2]
    slots = anchor_slots(m)
    grads = [torch.zeros_like(z) for z in zs]
    for a in range(m):
        for b in range(a + 1, m):  # ∂L/∂(Z_a Z_bᵀ) from anchor a and (transposed) from anchor b
            with profile_pass("backward: sum of the two anchors' gradients"):  # a transposed copy, then contiguous
                dc = cross[b, slots[b][a]].T.contiguous().mul_(cx[b]).add_(cross[a, slots[a][b]], alpha=cx[a])
            with profile_pass("backward: gram matmuls"):
                grads[a].addmm_(dc, zs[b])
                grads[b].addmm_(dc.T, zs[a])
    with profile_pass("backward: tuple Gram matrices"):
        k = m - 1
        # ∂L/∂(per-row Gram matrices) (N, M·M): every anchor's ∂/∂K and ∂/∂‖z_a‖² scattered in one index_add_
        others = others_of(m)
        flat = [others[a][i] * m + others[a][j] for a in range(m) for i in range(k) for j in range(k)]
        flat += [a * m + a for a in range(m)]
        src = torch.cat([(grad_k * cg[:, None, None, None]).permute(1, 0, 2, 3).reshape(n, m * k * k),
                         (grad_sq * cg[:, None]).T], 1)
        gfull = grad_k.new_zeros(n, m * m).index_add_(1, torch.as_tensor(flat, device=src.device), src)
        gfull = gfull.view(n, m, m)
        if g_rows is not None:
            gfull += g_rows
        gz = (gfull + gfull.mT).to(zstack.dtype) @ zstack  # (N, M, d)
    return [g.add_(gz[:, a]) for a, g in enumerate(grads)]
