"""IBMA's information-bottleneck bound IBB and its plug-in IB quantities (Wang et al., "IBMA: Information
Bottleneck-based Multi-modal Alignment"; spec ``specs/ibma.md`` §3).

Soft class-centroid assignments (§3.1, the only kernel): ``φ(v, a; K) = softmax_a(−||v − K_a||² / τ)`` (τ = 1 in the
paper). With α_i^(j) = φ(Z_i^(j), ·; F^(j)), β_i^(j) = φ(x_i^(j), ·; C^(j)), γ_i = φ(Z_i, ·; F):

* Modality-specific bound (Theorem 3.1): ``IBB^(j) = mean_i (U_i^(j) − V_i^(j))`` with
  ``U_i = Σ_{a,y} φ_i(a,y) log[φ_i(a,y) / (p_y φ(Z_i, a))]`` (φ_i(a,y) = α_i[a] β_i[y], eq. 3) and
  ``V_i = Σ_{a,y} α_i^(j)[a] α_i^(j')[y] log Q^(j)[a, y]`` (eq. 4, Lemma A.2).
* Fused bound (A.2, eq. 11): ``IBB^(fuse) = mean_i [ Σ_j U_i(γ, β^(j)) − Σ_a γ_i[a] log Q_f[a, Y_i] ]``.
* ``Q = Aᵀ onehot(Y) / counts`` (Algorithms 3, 4): column-stochastic, refreshed per epoch.

U simplifies to ``KL(β_i || p)``, which does not depend on the network (spec §3.3 [DERIVED]): its gradient is zero
and all of IBB's learning signal is in V. :func:`ibb_modality` evaluates U literally from the joint (so that the
zero gradient is a property of the formula, not of a shortcut) and reports U and V separately.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from mmib.info.discrete import mutual_information
from mmib.objectives.base import LossOutput


def soft_assign(v: torch.Tensor, centroids: torch.Tensor, temperature: float = 1.0,
                normalize: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``φ(v, ·; K)`` and its log: softmax over the C centroids of ``−||v − K_a||² / τ`` (§3.1); ``normalize``
    L2-normalises the vectors and the centroids first (the official code's choice, not the paper's)."""
    if v.dim() != 2 or centroids.dim() != 2 or v.shape[1] != centroids.shape[1]:
        raise ValueError(f"soft_assign: v (N, D) and centroids (C, D) must agree, got {tuple(v.shape)} and "
                         f"{tuple(centroids.shape)}")
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"soft_assign: temperature must be a finite number > 0, got {temperature!r}")
    if normalize:
        v = F.normalize(v, dim=1)
        centroids = F.normalize(centroids, dim=1)
    d2 = (v.pow(2).sum(1, keepdim=True) - 2 * v @ centroids.T + centroids.pow(2).sum(1)[None, :]).clamp_min(0)
    logphi = (-d2 / temperature).log_softmax(dim=1)
    return logphi.exp(), logphi


def _log_q(q: torch.Tensor, eps: float) -> torch.Tensor:
    return q.clamp_min(eps).log()


def compression_term(rep_assign: torch.Tensor, rep_logassign: torch.Tensor, input_assign: torch.Tensor,
                     input_logassign: torch.Tensor, log_prior: torch.Tensor) -> torch.Tensor:
    """U_i (N,) computed literally from the joint φ_i(a,y) = α_i[a] β_i[y] (eq. 3):
    ``Σ_{a,y} φ_i(a,y) [log φ_i(a,y) − log p_y − log α_i[a]]``."""
    joint = rep_assign[:, :, None] * input_assign[:, None, :]  # (N, a, y)
    log_joint = rep_logassign[:, :, None] + input_logassign[:, None, :]
    return (joint * (log_joint - log_prior[None, None, :] - rep_logassign[:, :, None])).sum((1, 2))


def alignment_term(assign_j: torch.Tensor, assign_other: torch.Tensor, q: torch.Tensor,
                   eps: float = 1e-8) -> torch.Tensor:
    """V_i (N,) = ``α_i^(j)ᵀ log Q^(j) α_i^(j')`` (eq. 4 with the factorised joint)."""
    return torch.einsum("na,ay,ny->n", assign_j, _log_q(q, eps), assign_other)


def fused_alignment_term(fused_assign: torch.Tensor, y: torch.Tensor, q_fused: torch.Tensor,
                         eps: float = 1e-8) -> torch.Tensor:
    """``Σ_a γ_i[a] log Q_f[a, Y_i]`` (N,) (eq. 11's last line)."""
    return (fused_assign * _log_q(q_fused, eps)[:, y].T).sum(1)


def ibb_modality(rep_assign: torch.Tensor, rep_logassign: torch.Tensor, other_assign: torch.Tensor,
                 input_assign: torch.Tensor, input_logassign: torch.Tensor, log_prior: torch.Tensor,
                 q: torch.Tensor, eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample ``(U_i, V_i)`` of IBB^(j) (Theorem 3.1); IBB_b^(j) = mean(U − V)."""
    u = compression_term(rep_assign, rep_logassign, input_assign, input_logassign, log_prior)
    v = alignment_term(rep_assign, other_assign, q, eps)
    return u, v


def ibb_fuse(fused_assign: torch.Tensor, fused_logassign: torch.Tensor, input_assigns: Sequence[torch.Tensor],
             input_logassigns: Sequence[torch.Tensor], log_prior: torch.Tensor, y: torch.Tensor,
             q_fused: torch.Tensor, eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample ``(U_i, V_i)`` of IBB^(fuse) (eq. 11, with X^(1) in the first line, spec §3.9 A2): U sums one
    compression term per modality."""
    u = sum(compression_term(fused_assign, fused_logassign, b, lb, log_prior)
            for b, lb in zip(input_assigns, input_logassigns))
    v = fused_alignment_term(fused_assign, y, q_fused, eps)
    return u, v


def update_q(assign: torch.Tensor, y: torch.Tensor, n_classes: int, previous: torch.Tensor | None = None) -> torch.Tensor:
    """``Q[a, y] = Σ_i φ(·_i, a) 1[Y_i = y] / Σ_i 1[Y_i = y]`` (Algorithms 3, 4, vectorised). A class with no sample
    keeps its previous column (or the uniform 1/C)."""
    onehot = F.one_hot(y.long(), n_classes).to(assign.dtype)
    counts = onehot.sum(0)
    q = assign.detach().T @ onehot / counts.clamp_min(1)[None, :]
    empty = counts == 0
    if empty.any():
        fill = previous.to(q) if previous is not None else torch.full_like(q, 1.0 / n_classes)
        q[:, empty] = fill[:, empty]
    return q


def class_means(v: torch.Tensor, y: torch.Tensor, n_classes: int, previous: torch.Tensor | None = None) -> torch.Tensor:
    """Per-class means (C, D) of ``v`` (centroids C_y^(j), F_a^(j), F_a); an absent class keeps ``previous`` (or 0)."""
    onehot = F.one_hot(y.long(), n_classes).to(v.dtype)
    counts = onehot.sum(0)
    means = onehot.T @ v.detach() / counts.clamp_min(1)[:, None]
    empty = counts == 0
    if empty.any():
        means[empty] = previous.to(means)[empty] if previous is not None else 0.0
    return means


def plugin_mi(joint: torch.Tensor) -> torch.Tensor:
    """``Σ P(a,y) log[P(a,y) / (P(a) P(y))]`` of a (C, C') joint (nats; 0 log 0 = 0), normalized to sum 1:
    :func:`mmib.info.discrete.mutual_information` of the table (float64, ``H(A) + H(Y) − H(A, Y)``), returned as a
    0-d tensor of ``joint``'s dtype (a monitoring value: no gradient)."""
    p = joint.detach().to(device="cpu", dtype=torch.float64)
    p = p / p.sum()
    return torch.tensor(mutual_information(p.numpy()), dtype=joint.dtype)


def plugin_ib(assigns: Sequence[torch.Tensor], input_assigns: Sequence[torch.Tensor], fused_assign: torch.Tensor,
              y: torch.Tensor, n_classes: int) -> dict[str, float]:
    """The "true" plug-in IB quantities of §3.2 over a set of samples (monitoring, Table 5): for every modality j,
    I(Z^(j); X^(j)), I(Z^(j); Z^(k)) for each other k and IB^(j) = I(Z^(j);X^(j)) − mean_k I(Z^(j);Z^(k)) (M = 2: the
    paper's definition); I(Z; X^(j)), I(Z; Y) and IB^(fuse) = Σ_j I(Z; X^(j)) − I(Z; Y). Soft marginals throughout."""
    n = fused_assign.shape[0]
    out: dict[str, float] = {}
    m = len(assigns)
    for j in range(m):
        izx = plugin_mi(assigns[j].T @ input_assigns[j] / n)
        out[f"I_Z{j}_X{j}"] = float(izx)
        izz = []
        for k in range(m):
            if k != j:
                v = plugin_mi(assigns[j].T @ assigns[k] / n)
                out[f"I_Z{j}_Z{k}"] = float(v)
                izz.append(float(v))
        out[f"IB_{j}"] = float(izx) - sum(izz) / len(izz)
    onehot = F.one_hot(y.long(), n_classes).to(fused_assign.dtype)
    ifx = [float(plugin_mi(fused_assign.T @ b / n)) for b in input_assigns]
    for j, v in enumerate(ifx):
        out[f"I_Z_X{j}"] = v
    izy = float(plugin_mi(fused_assign.T @ onehot / n))
    out["I_Z_Y"] = izy
    out["IB_fuse"] = sum(ifx) - izy
    return out


class IBBLoss(torch.nn.Module):
    """``η (Σ_{ordered pairs (j,k)} IBB^(j|k) + IBB^(fuse))`` on a batch (eq. 2's IB part; M = 2: IBB^(1) + IBB^(2)).

    Every centroid set and Q is a constant here (detached buffers of the method). Terms report U and V of every bound
    separately (U has no gradient: spec §3.3).

    Args:
        eta: the IBB weight η >= 0.
        temperature, normalize: see :func:`soft_assign`.
        modality_alignment: ``False`` is the "w/o MSRA" ablation (only IBB^(fuse)).
        eps: clamp of Q before the log.

    The class prior is floored before its log at ``max(1e-300, finfo(dtype).tiny)`` (1e-300 in float64, ≈1.2e-38
    in float32, where 1e-300 rounds to 0): a class with prior 0 (absent from the split the prior was counted on)
    gives a large finite U instead of an infinite loss and NaN gradients.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> n, c, y = 8, 2, torch.tensor([0, 1] * 4)
        >>> reps, fused = [torch.randn(n, 4), torch.randn(n, 4)], torch.randn(n, 4)  # Z^(1), Z^(2), Z
        >>> inputs = [torch.randn(n, 5), torch.randn(n, 3)]  # X^(1), X^(2)
        >>> feature_c, input_c = [class_means(z, y, c) for z in reps], [class_means(x, y, c) for x in inputs]
        >>> fused_c = class_means(fused, y, c)
        >>> qs = [update_q(soft_assign(z, k)[0], y, c) for z, k in zip(reps, feature_c)]
        >>> q_fused = update_q(soft_assign(fused, fused_c)[0], y, c)
        >>> prior = torch.bincount(y, minlength=c) / n
        >>> out = IBBLoss(eta=0.5)(reps, fused, inputs, y, feature_c, fused_c, input_c, prior, qs, q_fused)
        >>> sorted(out.terms)
        ['ibb', 'ibb_U_0_1', 'ibb_U_1_0', 'ibb_U_fuse', 'ibb_V_0_1', 'ibb_V_1_0', 'ibb_V_fuse']
        >>> bool(torch.isclose(out.loss, 0.5 * out.terms["ibb"]))  # η · (IBB^(1|2) + IBB^(2|1) + IBB^(fuse))
        True
    """

    def __init__(self, eta: float = 0.5, temperature: float = 1.0, normalize: bool = False,
                 modality_alignment: bool = True, eps: float = 1e-8):
        super().__init__()
        if not (isinstance(eta, (int, float)) and math.isfinite(eta) and eta >= 0):
            raise ValueError(f"eta must be a finite number >= 0, got {eta!r}")
        if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
        self.eta, self.temperature, self.normalize = float(eta), float(temperature), bool(normalize)
        self.modality_alignment, self.eps = bool(modality_alignment), float(eps)

    def assign(self, v: torch.Tensor, centroids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return soft_assign(v, centroids, self.temperature, self.normalize)

    def forward(self, reps: Sequence[torch.Tensor], fused: torch.Tensor, inputs: Sequence[torch.Tensor],
                y: torch.Tensor, feature_centroids: Sequence[torch.Tensor], fused_centroids: torch.Tensor,
                input_centroids: Sequence[torch.Tensor], prior: torch.Tensor, qs: Sequence[torch.Tensor],
                q_fused: torch.Tensor) -> LossOutput:
        m = len(reps)
        if not (len(inputs) == len(feature_centroids) == len(input_centroids) == len(qs) == m) or m < 2:
            raise ValueError("IBBLoss: reps, inputs, centroids and Q must be given for the same >= 2 modalities")
        log_prior = prior.clamp_min(max(1e-300, torch.finfo(prior.dtype).tiny)).log()
        a = [self.assign(z, c) for z, c in zip(reps, feature_centroids)]
        # inputs are fixed data: their soft assignments never carry gradient
        b = [soft_assign(x.detach(), c, self.temperature, self.normalize) for x, c in zip(inputs, input_centroids)]
        g, lg = self.assign(fused, fused_centroids)
        terms: dict[str, torch.Tensor] = {}
        total = torch.zeros((), dtype=fused.dtype, device=fused.device)
        if self.modality_alignment:
            for j in range(m):
                for k in range(m):
                    if j == k:
                        continue
                    u, v = ibb_modality(a[j][0], a[j][1], a[k][0], b[j][0], b[j][1], log_prior, qs[j], self.eps)
                    total = total + (u - v).mean()
                    terms[f"ibb_U_{j}_{k}"] = u.mean().detach()
                    terms[f"ibb_V_{j}_{k}"] = v.mean().detach()
        u, v = ibb_fuse(g, lg, [x[0] for x in b], [x[1] for x in b], log_prior, y, q_fused, self.eps)
        total = total + (u - v).mean()
        terms["ibb_U_fuse"] = u.mean().detach()
        terms["ibb_V_fuse"] = v.mean().detach()
        terms["ibb"] = total.detach()
        return LossOutput(self.eta * total, terms)
