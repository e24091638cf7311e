"""How the projection kernels of OVA-IB and GRAM run: cache blocks of rows (:data:`BLOCK_ELEMENTS`,
:func:`row_blocks`), the layout of the per-candidate coefficients, the kernel names (:data:`KERNEL_CHOICES`), the
inputs of the multi-anchor Functions (:func:`one_vs_rest_inputs`, :func:`flat_anchor_inputs`) and the profiler
labels of the passes (:data:`PROFILE_PASSES`, :func:`profile_pass`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch

from mmib.objectives.projection.factor import rowwise_gram

#: elements per block of the (Nt, Na) arrays that :class:`_ProjectionScores` processes at a time: the ~12 block
#: arrays of one step stay in a core's L2 cache instead of streaming 3k full N×N arrays through memory per operation
BLOCK_ELEMENTS = 32768


def row_blocks(nt: int, na: int, device: torch.device | None = None) -> list[slice]:
    """Row blocks of an (nt, na) array of about :data:`BLOCK_ELEMENTS` elements each on the CPU (cache blocking);
    one block elsewhere (on a GPU each block is a round of kernel launches, and there is no cache to fit)."""
    if device is not None and device.type != "cpu":
        return [slice(0, nt)]
    step = max(1, BLOCK_ELEMENTS // max(na, 1))
    return [slice(r, min(r + step, nt)) for r in range(0, nt, step)]


def coefficient_columns(linv: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(L⁻¹)_ij of every anchor and candidate as one (A, k, k, Nt, 1) tensor (the compiled kernels index it as
    coef[a][i][j])."""
    return linv.to(dtype).permute(0, 2, 3, 1).unsqueeze(-1).contiguous()


#: the kernels of the projection algebra: ``"eager"`` (the default: the fused sweeps' algebra as numba kernels,
#: :mod:`mmib.objectives.projection.numba_kernels`, where numba imports and the tensors are on the CPU; otherwise
#: ``"torch"``), ``"torch"`` (the same algebra as PyTorch operations on cache blocks), ``"compiled"`` (the fastest
#: compiled code for the device: on the CPU where numba imports the numba kernels of ``"eager"``, which are faster
#: than Inductor's kernels at every measured size (docs/methods/ova_ib.md, "Performance"); elsewhere ``"inductor"``),
#: ``"inductor"`` (the block algebra fused by ``torch.compile``; needs a C++ compiler on the CPU)
KERNEL_CHOICES = ("eager", "torch", "compiled", "inductor")
#: the kernel names that may run ``torch.compile``d algebra (:func:`uses_inductor`)
_INDUCTOR_NAMES = ("compiled", "inductor")


def uses_inductor(kernel: str, numba_runs: bool = False) -> bool:
    """Whether kernel ``kernel`` runs the ``torch.compile``d algebra: ``"inductor"`` always, ``"compiled"`` where the
    numba kernels do not run (``numba_runs`` False: another device or dtype, or numba missing)."""
    return kernel == "inductor" or (kernel in _INDUCTOR_NAMES and not numba_runs)


def check_kernel(kernel: str) -> str:
    """Validate the name of a projection-score kernel (:data:`KERNEL_CHOICES`)."""
    if kernel not in KERNEL_CHOICES:
        raise ValueError(f"kernel must be one of {KERNEL_CHOICES}, got {kernel!r}")
    return kernel


#: label the passes of :class:`_OneVsAllSufficiency` for ``torch.profiler`` (the pass-by-pass profile of
#: ``benchmarks/bench_alignment_objectives.py --profile``); off by default (no cost)
PROFILE_PASSES = False


def profile_pass(name: str):
    return torch.profiler.record_function(f"ova_ib: {name}") if PROFILE_PASSES else contextlib.nullcontext()


def flat_anchor_inputs(
    cross: Sequence[Sequence[torch.Tensor]], grams: torch.Tensor, anchor_sq_norms: torch.Tensor, what: str
) -> list[torch.Tensor]:
    """Check the per-anchor inputs of a multi-anchor tuple measure and flatten ``cross`` anchor-major.

    Raises:
        ValueError: (naming ``what``) unless grams is (A, Nt, k, k), the norms (A, Na) and every anchor has k
            cross matrices.
    """
    n_anchor = len(cross)
    if grams.dim() != 4 or grams.shape[0] != n_anchor or anchor_sq_norms.shape[0] != n_anchor:
        raise ValueError(
            f"{what}: {n_anchor} anchors need grams (A, Nt, k, k) and norms (A, Na), got "
            f"{tuple(grams.shape)} and {tuple(anchor_sq_norms.shape)}"
        )
    k = grams.shape[-1]
    if any(len(c) != k for c in cross):
        raise ValueError(f"{what}: every anchor needs k = {k} cross matrices")
    return [c for per in cross for c in per]


def one_vs_rest_inputs(
    zs: Sequence[torch.Tensor], cands: Sequence[torch.Tensor], anchors: Sequence[int]
) -> tuple[list[list[torch.Tensor]], torch.Tensor, torch.Tensor]:
    """The inputs of :func:`projection_scores_from_gram` / GRAM's volumes for the given anchor modalities.

    ``zs``: the local embeddings (n, d) of the M modalities; ``cands``: the candidates (N_all, d) (``zs`` itself
    without gathering). Each pair's cross matrix is one matmul; when the candidates are the local embeddings it is
    shared by the pair's two anchors (one the transpose of the other: the M(M−1)/2 matmuls of pairwise CLIP). The
    tuple Gram matrices are sub-blocks of one per-row Gram matrix of all candidates.

    Returns:
        ``(cross, grams, sq_norms)``: per anchor its k = M−1 cross matrices (n, N_all), grams (A, N_all, k, k) and
        the anchors' squared norms (A, n).
    """
    m = len(zs)
    others = [[b for b in range(m) if b != a] for a in anchors]
    cross: dict[tuple[int, int], torch.Tensor] = {}
    for a, oth in zip(anchors, others):
        for b in oth:
            if (a, b) not in cross:
                cross[(a, b)] = zs[a] @ cands[b].T
                if cands[b] is zs[b] and cands[a] is zs[a]:
                    cross[(b, a)] = cross[(a, b)].T
    full_gram = rowwise_gram(cands)  # (N_all, M, M)
    idx = torch.as_tensor(others, device=full_gram.device)  # (A, M−1)
    grams = full_gram[:, idx[:, :, None], idx[:, None, :]].transpose(0, 1)  # (A, N_all, M−1, M−1)
    sq_norms = torch.stack([(zs[a] * zs[a]).sum(-1) for a in anchors])
    return [[cross[(a, b)] for b in oth] for a, oth in zip(anchors, others)], grams, sq_norms
