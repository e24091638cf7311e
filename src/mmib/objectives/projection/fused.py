"""Fused (``torch.compile``) kernels of the tuple measures' elementwise algebra: the OVA-IB projection score and
the GRAM volume.

The eager implementation in :mod:`mmib.objectives.projection.scores` runs the ~30 elementwise operations per (anchor,
candidate) pair of the (M−1)×(M−1) algebra as separate PyTorch operations on cache-sized blocks: each one streams
its operands through memory, so the score costs more than the Gram matmuls it starts from. The functions below are
the same algebra written as one expression per pass; :func:`compiled` hands them to ``torch.compile`` (Inductor, a
C++ compiler at run time), which turns each pass into one loop that keeps every intermediate in registers.

Layout: candidate-major, every array (Nt, Na) (``cross_i[t, a] = ⟨tuple_t^(i), anchor_a⟩``), the per-candidate
coefficients (Nt, 1) columns, the anchor norms a (1, Na) row, so that the contractions over anchors of the backward
reduce along contiguous memory.

The first call per (k, dtype) compiles (seconds to a minute; Inductor caches the result on disk for later
processes); shapes are dynamic, so a new batch size does not recompile.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Sequence

import torch

#: squared-norm floor of the projection score (the eager kernels of :mod:`mmib.objectives.projection` use it too)
EPS2 = 1e-24


def _lower(xs: Sequence[torch.Tensor], coef: Sequence[Sequence[torch.Tensor]]) -> list[torch.Tensor]:
    """y_i = Σ_{j≤i} coef[i][j] x_j."""
    out = []
    for i in range(len(xs)):
        acc = xs[0] * coef[i][0]
        for j in range(1, i + 1):
            acc = acc + xs[j] * coef[i][j]
        out.append(acc)
    return out


def _upper(xs: Sequence[torch.Tensor], coef: Sequence[Sequence[torch.Tensor]]) -> list[torch.Tensor]:
    """w_i = Σ_{j≥i} coef[j][i] x_j (the transpose of the lower-triangular ``coef``)."""
    k = len(xs)
    out = []
    for i in range(k):
        acc = xs[i] * coef[i][i]
        for j in range(i + 1, k):
            acc = acc + xs[j] * coef[j][i]
        out.append(acc)
    return out


def _sum_sq(xs: Sequence[torch.Tensor]) -> torch.Tensor:
    out = xs[0] * xs[0]
    for x in xs[1:]:
        out = out + x * x
    return out


def score_forward(
    xs: Sequence[torch.Tensor], coef: Sequence[Sequence[torch.Tensor]], z_norm: torch.Tensor, ridge: float
) -> tuple[torch.Tensor, ...]:
    """Forward pass: returns ``(s, a1, a2, w_1..w_k)``, all (Nt, Na).

    ``xs``: k arrays c_i (Nt, Na); ``coef[i][j]``: (L⁻¹)_ij per candidate (Nt, 1); ``z_norm``: ‖z_a‖ (1, Na).
    s = q1 / (‖z‖ √P) with q1 = ‖L⁻¹c‖², w = K⁻¹c, P = q1 − λ‖w‖² (clamped); a1 = ∂s/∂q1, a2 = ∂s/∂q2 (zero where
    P was clamped).
    """
    y = _lower(xs, coef)
    q1 = _sum_sq(y)
    w = _upper(y, coef)
    p = q1 - ridge * _sum_sq(w)
    p_ok = p > EPS2
    p = p.clamp_min(EPS2)
    inv = 1.0 / (p.sqrt() * z_norm)
    s = q1 * inv
    half = 0.5 * s / p * p_ok
    return (s, inv - half, half * ridge, *w)


def score_backward(
    gs: torch.Tensor,
    s: torch.Tensor,
    a1: torch.Tensor,
    a2: torch.Tensor,
    w: Sequence[torch.Tensor],
    coef: Sequence[Sequence[torch.Tensor]],
) -> tuple[torch.Tensor, ...]:
    """Backward pass: returns ``(grad_c_1..grad_c_k, grad_K_upper, gs_dot_s)``.

    grad_c_i = 2(g1 w_i + g2 v_i) (Nt, Na) with g1 = gs·a1, g2 = gs·a2, v = K⁻¹w; ``grad_K_upper`` (Nt, k(k+1)/2):
    the upper triangle (row-major, i ≤ j) of ∂L/∂K = −Σ_a [g1 w wᵀ + g2 (w vᵀ + v wᵀ)] (symmetric);
    ``gs_dot_s`` (Na,) = Σ_t gs·s.
    """
    k = len(w)
    g1 = gs * a1
    g2 = gs * a2
    v = _upper(_lower(w, coef), coef)
    grad_c = [2.0 * (g1 * w[i] + g2 * v[i]) for i in range(k)]
    upper = []
    for i in range(k):
        for j in range(i, k):
            upper.append(-(g1 * w[i] * w[j] + g2 * (w[i] * v[j] + v[i] * w[j])).sum(1))
    return (*grad_c, torch.stack(upper, dim=-1), (gs * s).sum(0))


def scores_forward(
    xs: Sequence[torch.Tensor], coef: torch.Tensor, z_norm: torch.Tensor, ridge: float
) -> list[tuple[torch.Tensor, ...]]:
    """:func:`score_forward` for A anchors: ``xs`` A·k arrays (anchor-major), ``coef`` (A, k, k, Nt, 1),
    ``z_norm`` (A, 1, Na); one output tuple per anchor."""
    n_anchor = coef.shape[0]
    k = len(xs) // n_anchor
    return [score_forward(xs[a * k : (a + 1) * k], coef[a], z_norm[a], ridge) for a in range(n_anchor)]


def scores_backward(
    gs: Sequence[torch.Tensor], states: Sequence[Sequence[torch.Tensor]], coef: torch.Tensor
) -> list[tuple[torch.Tensor, ...]]:
    """:func:`score_backward` for A anchors: ``gs`` A gradients (Nt, Na); ``states[a]`` = (s, a1, a2, w_1..w_k)."""
    return [
        score_backward(g, st[0], st[1], st[2], list(st[3:]), coef[a]) for a, (g, st) in enumerate(zip(gs, states))
    ]


def volume_forward(
    xs: Sequence[torch.Tensor],
    coef: Sequence[Sequence[torch.Tensor]],
    det_k: torch.Tensor,
    sq: torch.Tensor,
    eps: float,
) -> tuple[torch.Tensor, ...]:
    """GRAM volume forward: returns ``(vol, r, w_1..w_k)``, all (Nt, Na).

    ``xs``: k arrays c_i (Nt, Na); ``coef[i][j]``: (L⁻¹)_ij per candidate (Nt, 1); ``det_k``: det K per candidate
    (Nt, 1); ``sq``: ‖a‖² (1, Na). det G = det K · r with r = ‖a‖² − cᵀK⁻¹c (Schur complement);
    vol = √max(det G, eps); w = K⁻¹c (for the backward).
    """
    y = _lower(xs, coef)
    w = _upper(y, coef)
    r = sq - _sum_sq(y)
    vol = (det_k * r).clamp_min(eps).sqrt()
    return (vol, r, *w)


def volume_backward(
    gv: torch.Tensor,
    vol: torch.Tensor,
    r: torch.Tensor,
    w: Sequence[torch.Tensor],
    det_k: torch.Tensor,
    eps: float,
) -> tuple[torch.Tensor, ...]:
    """GRAM volume backward: returns ``(grad_c_1..grad_c_k, wwT_upper, g_det, grad_sq)``.

    With g = ∂L/∂det G = gv / (2 vol) (0 where det G was clamped): ∂L/∂c_i = −2 g det K w_i (Nt, Na);
    ``wwT_upper`` (Nt, k(k+1)/2) the upper triangle of Σ_a g det K · w wᵀ (the cᵀK⁻¹c part of ∂L/∂K);
    ``g_det`` (Nt,) = Σ_a g r (= ∂L/∂det K); ``grad_sq`` (Na,) = Σ_t g det K.
    """
    k = len(w)
    g = gv * ((det_k * r) > eps) * 0.5 / vol
    gd = g * det_k
    grad_c = [-2.0 * gd * w[i] for i in range(k)]
    upper = []
    for i in range(k):
        for j in range(i, k):
            upper.append((gd * w[i] * w[j]).sum(1))
    return (*grad_c, torch.stack(upper, dim=-1), (g * r).sum(1), gd.sum(0))


def volumes_forward(
    xs: Sequence[torch.Tensor], coef: torch.Tensor, det_k: torch.Tensor, sq: torch.Tensor, eps: float
) -> list[tuple[torch.Tensor, ...]]:
    """:func:`volume_forward` for A anchors: ``xs`` A·k arrays, ``coef`` (A, k, k, Nt, 1), ``det_k`` (A, Nt, 1),
    ``sq`` (A, 1, Na)."""
    n_anchor = coef.shape[0]
    k = len(xs) // n_anchor
    return [volume_forward(xs[a * k : (a + 1) * k], coef[a], det_k[a], sq[a], eps) for a in range(n_anchor)]


def volumes_backward(
    gv: Sequence[torch.Tensor], states: Sequence[Sequence[torch.Tensor]], det_k: torch.Tensor, eps: float
) -> list[tuple[torch.Tensor, ...]]:
    """:func:`volume_backward` for A anchors; ``states[a]`` = (vol, r, w_1..w_k)."""
    return [
        volume_backward(g, st[0], st[1], list(st[2:]), det_k[a], eps) for a, (g, st) in enumerate(zip(gv, states))
    ]


def sufficiency_block(
    x: torch.Tensor,
    coef: torch.Tensor,
    zb_inv: torch.Tensor,
    r0: torch.Tensor,
    lam: float,
    positive_in_denominator: bool,
) -> tuple[torch.Tensor, ...]:
    """One block of anchor rows of OVA-IB's fused sufficiency pass
    (``mmib.objectives.projection.one_vs_all._OneVsAllSufficiency``, ``kernel="compiled"``): the same algebra as its
    eager loop, one expression per output.

    ``x`` (A, k, rb, N): the cross entries of the block's anchor rows (anchor-major); ``coef`` (A, k, k, 1, N): L⁻¹
    per candidate (lower triangle); ``zb_inv`` (A, rb, 1): scale/‖z‖ (scale = 1/τ); ``r0``: the first row of the
    block (0-d integer tensor; the targets are on the diagonal). Returns ``(loss_rows (A, rb), rowdot (A, rb),
    grad_x (A, k, rb, N), acc (A, 2, k(k+1)/2, N))``: the rows' cross-entropies, scale · Σ_t (softmax − onehot)·s,
    scale · (g₁ w + (λ/2) gh v) (half the gradient w.r.t. the cross entries, per unit of 1/N) and the column sums
    over the block's rows of scale · g₁ w_i w_j and scale · gh w_i w_j (i ≤ j).
    """
    k, rb, n = x.shape[1], x.shape[2], x.shape[3]
    xs = [x[:, i] for i in range(k)]
    cf = [[coef[:, i, j] for j in range(k)] for i in range(k)]
    y = _lower(xs, cf)
    q1 = _sum_sq(y)
    w = _upper(y, cf)
    p = q1 - lam * _sum_sq(w)
    p_ok = p > EPS2
    p = p.clamp_min(EPS2)
    inv = torch.rsqrt(p) * zb_inv
    logits = q1 * inv  # scale · s
    cols = torch.arange(n, device=x.device)
    diag = cols[None, :] == (torch.arange(rb, device=x.device) + r0)[:, None]  # (rb, N): the targets
    pos = torch.where(diag, logits, 0.0).sum(-1)
    if positive_in_denominator:
        lse = torch.logsumexp(logits, -1, keepdim=True)
        prob = torch.exp(logits - lse)
    else:
        masked = torch.where(diag, float("-inf"), logits)
        lse = torch.logsumexp(masked, -1, keepdim=True)
        prob = torch.exp(masked - lse)
    loss_rows = lse.squeeze(-1) - pos
    g = prob - diag.to(prob.dtype)
    rowdot = (g * logits).sum(-1)
    gh = torch.where(p_ok, logits / p, 0.0) * g
    g1 = g * inv - 0.5 * gh
    v = _upper(_lower(w, cf), cf)
    grad_x = torch.stack([g1 * w[i] + (0.5 * lam) * gh * v[i] for i in range(k)], 1)
    acc = []
    for j in range(k):
        for i in range(j + 1):
            ww = w[i] * w[j]
            acc.append(torch.stack([(g1 * ww).sum(1), (gh * ww).sum(1)], 1))
    return loss_rows, rowdot, grad_x, torch.stack(acc, 2)


#: the kernels that :func:`call` can run compiled, by name
KERNELS: dict[str, Callable] = {
    "scores_forward": scores_forward,
    "scores_backward": scores_backward,
    "volumes_forward": volumes_forward,
    "volumes_backward": volumes_backward,
    "sufficiency_block": sufficiency_block,
}

_LOCK = threading.Lock()
_COMPILED: dict[str, Callable] = {}
_FAILED: list[str] = []


def compiled(name: str) -> Callable:
    """The kernel ``name`` of :data:`KERNELS` compiled with ``torch.compile(dynamic=True)`` (built once per
    process; it compiles at its first call per (number of anchors, k, dtype)).

    Raises:
        RuntimeError: if an earlier compilation in this process failed (the message names the reason).
    """
    with _LOCK:
        if _FAILED:
            raise RuntimeError(_FAILED[0])
        if name not in _COMPILED:
            _COMPILED[name] = torch.compile(KERNELS[name], dynamic=True)
        return _COMPILED[name]


def call(name: str, *args, who: str = "kernel='compiled'"):
    """Run the compiled kernel ``name``; None when compilation fails (then one ``RuntimeWarning`` per process names
    the reason, and every later call returns None at once: the caller runs its eager kernel)."""
    try:
        fn = compiled(name)
    except RuntimeError:  # an earlier compilation failed and was reported
        return None
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - any compiler/toolchain failure means: use the eager kernel
        text = str(exc).strip()
        reason = f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
        mark_failed(reason)
        warnings.warn(
            f"{who} is unavailable ({reason}); using the eager kernel for the rest of this process "
            "(torch.compile needs a C++ compiler and the Python headers)",
            RuntimeWarning,
            stacklevel=4,
        )
        return None


def run(name: str, kernel: str, *args, who: str = "kernel='compiled'"):
    """The kernel ``name`` of :data:`KERNELS` on ``args``: compiled when ``kernel == "compiled"`` and compilation
    works (:func:`call`), else the same function run eagerly."""
    if kernel in ("compiled", "inductor"):
        out = call(name, *args, who=who)
        if out is not None:
            return out
    return KERNELS[name](*args)


def mark_failed(reason: str) -> None:
    """Record that compilation failed, so that later calls fall back at once instead of retrying."""
    with _LOCK:
        if not _FAILED:
            _FAILED.append(reason)


def upper_to_full(upper: torch.Tensor, k: int) -> torch.Tensor:
    """(Nt, k(k+1)/2) row-major upper triangle → (Nt, k, k) symmetric."""
    idx = torch.triu_indices(k, k, device=upper.device)
    full = upper.new_zeros(upper.shape[0], k, k)
    full[:, idx[0], idx[1]] = upper
    full[:, idx[1], idx[0]] = upper
    return full

