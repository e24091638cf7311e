"""The R/U/S objective of the EEG + fNIRS hybrid decomposition design (spec part C, Step 4 = C.7):

    L_total = λ_R·L_R + λ_U·L_U + λ_S·L_S + λ_orth·L_orth

* ``L_R`` = symmetric InfoNCE between the two redundancy heads Z_R_a, Z_R_b of the same epoch (other epochs of the
  batch are the negatives), cosine similarity / τ_R (:func:`mmib.objectives.clip.info_nce`).
* ``L_U`` = Σ_m [ MSE(Decoder_m(Z_U_m), targets_m) + λ_cross · L_cross_m ] — reconstruction of each modality's own
  physiological features from its unique head, plus a cross-modal minimization term, either

  - the design's ``L_U_neg = −log(1 − sim(Z_U_m, H_other))`` made well-defined (:func:`neg_sim_loss`), or
  - a gradient-reversal adversary (:class:`GradientReversal`; the method owns the adversary network and hands its
    loss in as ``cross``).
* ``L_S`` = symmetric InfoNCE between the synergy heads of two augmented fused views Z'_S, Z''_S (CoMM's idea).
* ``L_orth`` = mean over pairs of different components of the batch-mean |cos| between them (:func:`orthogonality_loss`).
* The synergy variant ``interaction`` of the method makes Z_S the functional-ANOVA (Hoeffding) interaction term of its
  fusion g(a, b): g(a_i, b_i) − mean over partners b of g(a_i, b) − mean over partners a of g(a, b_i) + the all-pairs
  mean (:func:`interaction_from_partners` with in-batch derangements, :func:`random_derangements`;
  :func:`interaction_with_reference` against a fixed reference set; :func:`double_center` for a full table).

Every function is pure tensor in, tensor out; :class:`RUSLoss` validates its weights in ``__init__`` and returns a
:class:`~mmib.objectives.base.LossOutput` with the named terms.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mmib.objectives.base import LossOutput, Temperature, l2_normalize
from mmib.objectives.clip import info_nce

NEG_SIM_FORMS = ("abs", "signed")


def _check_pair(a: torch.Tensor, b: torch.Tensor, name: str) -> None:
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor) or a.dim() != 2 or b.dim() != 2:
        raise ValueError(f"{name}: expects two 2-D tensors (N, d)")
    if a.shape != b.shape:
        raise ValueError(f"{name}: shapes differ, {tuple(a.shape)} vs {tuple(b.shape)}; they must match")
    if a.shape[0] < 1:
        raise ValueError(f"{name}: empty batch")


def row_cosine(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-row cosine similarity (N,) of two (N, d) tensors; a zero row gives 0 (no NaN)."""
    _check_pair(a, b, "row_cosine")
    return (l2_normalize(a, eps) * l2_normalize(b, eps)).sum(-1)


def neg_sim_loss(z: torch.Tensor, h: torch.Tensor, form: str = "abs", eps: float = 1e-3) -> torch.Tensor:
    """The design's cross-modal minimization term ``−log(1 − sim(Z_U, H_other))`` (C.7, item 2), made well-defined.

    With s = cos(z_i, h_i) ∈ [−1, 1] per sample:

    * ``form="abs"`` (default): mean_i −log(1 − (1 − ε)·|s_i|) — zero at orthogonality, increasing in |s|, finite
      (≤ −log ε) at |s| = 1. The literal form is minimized at s = −1 (anti-alignment), which carries exactly as much
      information about the other modality as s = +1; taking |s| makes orthogonality the optimum, as in L_orth.
    * ``form="signed"``: mean_i −log(1 − (1 − ε)·s_i), the literal term with only the pole at s = 1 removed.

    Args:
        z, h: (N, d) tensors of equal shape (project h first when the dimensions differ).
        eps: ε in (0, 1): keeps the argument of the log >= ε.
    """
    if form not in NEG_SIM_FORMS:
        raise ValueError(f"neg_sim_loss: form must be one of {', '.join(NEG_SIM_FORMS)}, got {form!r}")
    if not 0.0 < eps < 1.0:
        raise ValueError(f"neg_sim_loss: eps must lie in (0, 1), got {eps!r}")
    s = row_cosine(z, h)
    if form == "abs":
        s = s.abs()
    return -torch.log1p(-(1.0 - eps) * s).mean()



def _excluded_pairs(exclude, keys: list[str], who: str) -> set[frozenset]:
    """The unordered component pairs a pairwise penalty leaves out, each checked against the component names."""
    unknown = [p for p in exclude if not set(p) <= set(keys)]
    if unknown:
        raise ValueError(f"{who}: excluded pair {unknown[0]} names an unknown component; known: {keys}")
    return {frozenset(p) for p in exclude}

def orthogonality_loss(components: Mapping[str, torch.Tensor], exclude: Sequence[tuple[str, str]] = ()) -> tuple[
        torch.Tensor, dict[str, torch.Tensor]]:
    """L_orth (C.7, item 4): the mean over unordered pairs (a, b) of different components (pairs in ``exclude``
    left out, in either order) of mean_i |cos(z_a,i, z_b,i)|. Returns the loss and the per-pair values
    (``"R_eeg__U_eeg"`` → tensor)."""
    keys = list(components)
    if len(keys) < 2:
        raise ValueError(f"orthogonality_loss: needs at least 2 components, got {keys}")
    shape = tuple(components[keys[0]].shape)
    for k in keys:
        v = components[k]
        if not isinstance(v, torch.Tensor) or v.dim() != 2 or tuple(v.shape) != shape:
            got = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
            raise ValueError(f"orthogonality_loss: component '{k}' must be a (N, d) tensor of shape {shape}, got {got}")
    skip = _excluded_pairs(exclude, keys, "orthogonality_loss")
    normed = {k: l2_normalize(components[k]) for k in keys}
    pairs = {}
    for a, b in itertools.combinations(keys, 2):
        if frozenset((a, b)) in skip:
            continue
        pairs[f"{a}__{b}"] = (normed[a] * normed[b]).sum(-1).abs().mean()
    if not pairs:
        raise ValueError("orthogonality_loss: every pair is excluded")
    return torch.stack(list(pairs.values())).mean(), pairs


def _gaussian_gram(x: torch.Tensor, sigma: float | None) -> torch.Tensor:
    d2 = (x[:, None, :] - x[None, :, :]).pow(2).sum(-1)
    if sigma is None:  # median heuristic over the off-diagonal distances, not differentiated
        off = d2.detach()[~torch.eye(x.shape[0], dtype=torch.bool, device=x.device)]
        s2 = off.median().clamp_min(1e-12)
    else:
        s2 = torch.as_tensor(float(sigma) ** 2, dtype=x.dtype, device=x.device)
    return torch.exp(-d2 / (2 * s2))


def hsic(x: torch.Tensor, y: torch.Tensor, normalized: bool = True, sigma: float | None = None) -> torch.Tensor:
    """Hilbert–Schmidt independence criterion between the rows of ``x`` (N, p) and ``y`` (N, q) (Gretton et al.,
    ALT 2005), Gaussian kernels: the biased estimator tr(K H L H) / (N − 1)² with H = I − 11ᵀ/N.

    ``normalized`` (default): HSIC(x, y) / sqrt(HSIC(x, x) · HSIC(y, y)) ∈ [0, 1] (the kernel-alignment form),
    so that a penalty on it cannot be lowered by shrinking either input. ``sigma``: the kernel width of both;
    ``None``: per input, the square root of the median squared distance between different rows (median heuristic,
    treated as a constant in the gradient). With characteristic kernels the population HSIC is 0 iff x and y are
    independent, so unlike |cos| it measures (non-linear) dependence, not direction.
    """
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor) or x.dim() != 2 or y.dim() != 2:
        raise ValueError("hsic: expects two 2-D tensors (N, p), (N, q)")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"hsic: different numbers of rows, {x.shape[0]} vs {y.shape[0]}")
    n = x.shape[0]
    if n < 4:
        raise ValueError(f"hsic: needs at least 4 samples, got {n}")
    k, l_ = _gaussian_gram(x, sigma), _gaussian_gram(y, sigma)
    kc = k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()
    lc = l_ - l_.mean(0, keepdim=True) - l_.mean(1, keepdim=True) + l_.mean()
    h = (kc * lc).sum() / (n - 1) ** 2
    if not normalized:
        return h
    return h / ((kc * kc).sum() * (lc * lc).sum()).sqrt().clamp_min(1e-12) * (n - 1) ** 2


def hsic_penalty(components: Mapping[str, torch.Tensor], exclude: Sequence[tuple[str, str]] = ()) -> tuple[
        torch.Tensor, dict[str, torch.Tensor]]:
    """The information-based counterpart of :func:`orthogonality_loss`: the mean over unordered pairs (a, b) of
    different components (``exclude`` left out) of the normalized :func:`hsic` between the L2-normalized
    components. Returns the loss and the per-pair values (``"R_eeg__U_eeg"`` → tensor)."""
    keys = list(components)
    if len(keys) < 2:
        raise ValueError(f"hsic_penalty: needs at least 2 components, got {keys}")
    skip = _excluded_pairs(exclude, keys, "hsic_penalty")
    normed = {k: l2_normalize(components[k]) for k in keys}
    pairs = {f"{a}__{b}": hsic(normed[a], normed[b]) for a, b in itertools.combinations(keys, 2)
             if frozenset((a, b)) not in skip}
    if not pairs:
        raise ValueError("hsic_penalty: every pair is excluded")
    return torch.stack(list(pairs.values())).mean(), pairs


def random_derangements(n: int, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``k`` random permutations of ``range(n)`` without fixed points, as a (k, n) long tensor (CPU): row π with
    π[i] ≠ i. Each is one n-cycle through a uniformly random order (p[0] → p[1] → … → p[n−1] → p[0])."""
    if n < 2:
        raise ValueError(f"random_derangements: needs n >= 2 samples, got {n}")
    if k < 1:
        raise ValueError(f"random_derangements: needs k >= 1, got {k}")
    out = torch.empty(k, n, dtype=torch.long)
    for r in range(k):
        p = torch.randperm(n, generator=generator)
        out[r, p] = torch.roll(p, -1)
    return out


def interaction_from_partners(diag: torch.Tensor, mismatched: torch.Tensor, partners: torch.Tensor) -> torch.Tensor:
    """The functional-ANOVA (Hoeffding) interaction of a two-argument function g, estimated with in-batch partners:

        S_i = g(a_i, b_i) − mean_k g(a_i, b_{π_k(i)}) − mean_k g(a_{π_k⁻¹(i)}, b_i) + mean_{k,j} g(a_j, b_{π_k(j)})

    ``diag`` (N, d): g(a_i, b_i); ``mismatched`` (K, N, d): g(a_i, b_{π_k(i)}); ``partners`` (K, N): the
    permutations π_k (derangements: no sample is its own partner). The row mean (over b given a_i) and the column
    mean (over a given b_j) both come from the K mismatched evaluations — row i of pass k pairs a_i with b_{π_k(i)},
    and row π_k⁻¹(j) pairs b_j with a_{π_k⁻¹(j)} — and the all-pairs mean is their grand mean, so the estimate costs
    1 + K evaluations of g per sample."""
    if diag.dim() != 2 or mismatched.dim() != 3 or mismatched.shape[1:] != diag.shape:
        raise ValueError(f"interaction_from_partners: expects diag (N, d) and mismatched (K, N, d), got "
                         f"{tuple(diag.shape)} and {tuple(mismatched.shape)}")
    if tuple(partners.shape) != tuple(mismatched.shape[:2]):
        raise ValueError(f"interaction_from_partners: partners must be (K, N) = {tuple(mismatched.shape[:2])}, got "
                         f"{tuple(partners.shape)}")
    inv = torch.argsort(partners.to(diag.device), dim=1)  # inv[k, j] = π_k⁻¹(j)
    col = torch.stack([mismatched[k, inv[k]] for k in range(partners.shape[0])]).mean(0)
    return diag - mismatched.mean(0) - col + mismatched.mean((0, 1))


def interaction_with_reference(diag: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor,
                               ref: torch.Tensor) -> torch.Tensor:
    """The functional-ANOVA interaction of g against a fixed reference set {(a_r, b_r)}, r = 1…R:

        S_i = g(a_i, b_i) − mean_r g(a_i, b_r) − mean_r g(a_r, b_i) + mean_{r,s} g(a_r, b_s)

    ``diag`` (N, d), ``rows`` (N, R, d) = g(a_i, b_r), ``cols`` (N, R, d) = g(a_r, b_i), ``ref`` (R, R, d) =
    g(a_r, b_s) (all R² pairs, the diagonal included). S_i depends on sample i and the reference only. With the
    reference = the samples themselves this is :func:`double_center` of the full matrix."""
    n, d = diag.shape
    if rows.shape != cols.shape or rows.dim() != 3 or rows.shape[0] != n or rows.shape[2] != d:
        raise ValueError(f"interaction_with_reference: rows and cols must be (N={n}, R, d={d}), got "
                         f"{tuple(rows.shape)} and {tuple(cols.shape)}")
    r = rows.shape[1]
    if tuple(ref.shape) != (r, r, d):
        raise ValueError(f"interaction_with_reference: ref must be (R, R, d) = {(r, r, d)}, got {tuple(ref.shape)}")
    return diag - rows.mean(1) - cols.mean(1) + ref.mean((0, 1))


def double_center(g: torch.Tensor) -> torch.Tensor:
    """S[i, j] = g[i, j] − mean_l g[i, l] − mean_k g[k, j] + mean_{k,l} g[k, l] of a (N_a, N_b, d) tensor of
    evaluations g(a_i, b_j): the exact functional-ANOVA interaction for the empirical product of the two marginals
    (its mean over j for every i, and over i for every j, is 0)."""
    if g.dim() != 3:
        raise ValueError(f"double_center: expects (N_a, N_b, d), got {tuple(g.shape)}")
    return g - g.mean(1, keepdim=True) - g.mean(0, keepdim=True) + g.mean((0, 1), keepdim=True)


class _ReverseGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, coeff):
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return -ctx.coeff * g, None


class GradientReversal(nn.Module):
    """Gradient reversal layer (Ganin & Lempitsky 2015): identity forward, gradient × (−coeff) backward.

    Raises:
        ValueError: if ``coeff`` is negative or not finite.
    """

    def __init__(self, coeff: float = 1.0) -> None:
        super().__init__()
        if not math.isfinite(coeff) or coeff < 0:
            raise ValueError(f"GradientReversal: coeff must be a finite number >= 0, got {coeff!r}")
        self.coeff = float(coeff)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _ReverseGrad.apply(x, self.coeff)


class RUSLoss(nn.Module):
    """The weighted R/U/S objective (spec C.7).

    Args:
        lambda_r, lambda_u, lambda_s, lambda_orth: the weights λ (>= 0).
        lambda_cross: weight of the cross-modal minimization term inside L_U (>= 0).
        temperature_r, temperature_s: InfoNCE temperatures of L_R and L_S (> 0).
        orth_exclude: component pairs left out of L_orth and L_hsic (default: none; the method leaves out the
            two redundancy heads, which L_R aligns).
        lambda_hsic: weight of L_hsic, the mean normalized HSIC between the same pairs of components as L_orth
            (:func:`hsic_penalty`; information-based disentangling beside the |cos| of L_orth). 0: not computed.
        hsic_exclude: the pairs left out of L_hsic (default: ``orth_exclude``).
        lambda_syn: weight of L_syn, the synergy term of the ``unimodal_hsic`` synergy objective: the sum over
            modalities m of the normalized HSIC between Z'_S and the (detached) unimodal representation H_m, so that
            Z_S keeps only what neither modality determines alone. Used when ``s_unimodal`` is given.

    ``forward(r, s_views, components, recon, cross)``:
        r: the two redundancy embeddings ``{modality: (N, k)}`` (exactly 2);
        s_views: (Z'_S, Z''_S), each (N, k);
        components: every component ``{name: (N, k)}`` for L_orth;
        recon: ``{modality: (prediction (N, q), target (N, q))}`` for the reconstruction MSE;
        cross: ``{modality: scalar}`` cross-modal minimization terms (already computed by the method);
        s_unimodal: optional ``{modality: H_m (N, d)}`` for L_syn (detached here: the penalty moves Z_S only);
        s_syn: the Z_S that L_syn penalizes (default Z'_S; the method passes one computed from detached inputs, so
            that only the fusion and the S head are moved by L_syn).

    Example:
        >>> loss = RUSLoss(orth_exclude=[("R_a", "R_b")])
        >>> z = {k: torch.randn(8, 4) for k in ("R_a", "R_b", "U_a", "U_b", "S")}
        >>> out = loss({"a": z["R_a"], "b": z["R_b"]}, (z["S"], z["S"] + 0.1), z,
        ...            {"a": (torch.zeros(8, 2), torch.ones(8, 2))}, {"a": torch.tensor(0.5)})
        >>> sorted(out.terms)[:3]
        ['L_R', 'L_S', 'L_U']
    """

    def __init__(self, lambda_r: float = 1.0, lambda_u: float = 1.0, lambda_s: float = 1.0, lambda_orth: float = 1.0,
                 lambda_cross: float = 1.0, temperature_r: float = 0.1, temperature_s: float = 0.1,
                 orth_exclude: Sequence[tuple[str, str]] = (), lambda_hsic: float = 0.0,
                 lambda_syn: float = 1.0, hsic_exclude: Sequence[tuple[str, str]] | None = None) -> None:
        super().__init__()
        for name, v in (("lambda_r", lambda_r), ("lambda_u", lambda_u), ("lambda_s", lambda_s),
                        ("lambda_orth", lambda_orth), ("lambda_cross", lambda_cross), ("lambda_hsic", lambda_hsic),
                        ("lambda_syn", lambda_syn)):
            if not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"RUSLoss: {name} must be a finite number >= 0, got {v!r}")
        self.lambda_r, self.lambda_u, self.lambda_s = float(lambda_r), float(lambda_u), float(lambda_s)
        self.lambda_orth, self.lambda_cross = float(lambda_orth), float(lambda_cross)
        self.lambda_hsic, self.lambda_syn = float(lambda_hsic), float(lambda_syn)
        self.orth_exclude = [tuple(p) for p in orth_exclude]
        self.hsic_exclude = self.orth_exclude if hsic_exclude is None else [tuple(p) for p in hsic_exclude]
        self.temperature_r = Temperature(temperature_r)
        self.temperature_s = Temperature(temperature_s)

    def forward(self, r: Mapping[str, torch.Tensor], s_views: Sequence[torch.Tensor],
                components: Mapping[str, torch.Tensor], recon: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
                cross: Mapping[str, torch.Tensor],
                s_unimodal: Mapping[str, torch.Tensor] | None = None,
                s_syn: torch.Tensor | None = None) -> LossOutput:
        if len(r) != 2:
            raise ValueError(f"RUSLoss: L_R needs exactly 2 redundancy embeddings, got {list(r)}")
        ra, rb = list(r.values())
        _check_pair(ra, rb, "RUSLoss L_R")
        if len(s_views) != 2:
            raise ValueError(f"RUSLoss: L_S needs 2 fused views, got {len(s_views)}")
        _check_pair(s_views[0], s_views[1], "RUSLoss L_S")
        l_r = info_nce(l2_normalize(ra), l2_normalize(rb), self.temperature_r.scale())
        l_s = info_nce(l2_normalize(s_views[0]), l2_normalize(s_views[1]), self.temperature_s.scale())
        l_orth, pairs = orthogonality_loss(components, self.orth_exclude)
        terms: dict[str, torch.Tensor] = {}
        l_u = ra.new_zeros(())
        for m, (pred, target) in recon.items():
            if pred.shape != target.shape:
                raise ValueError(f"RUSLoss: reconstruction of '{m}': prediction {tuple(pred.shape)} and target "
                                 f"{tuple(target.shape)} differ")
            mse = (pred - target.detach()).pow(2).mean()
            terms[f"L_U_recon_{m}"] = mse.detach()
            l_u = l_u + mse
        for m, c in cross.items():
            if c.dim() != 0:
                raise ValueError(f"RUSLoss: cross-modal term of '{m}' must be a scalar, got shape {tuple(c.shape)}")
            terms[f"L_U_cross_{m}"] = c.detach()
            l_u = l_u + self.lambda_cross * c
        total = self.lambda_r * l_r + self.lambda_u * l_u + self.lambda_s * l_s + self.lambda_orth * l_orth
        if self.lambda_hsic > 0:
            l_hsic, hpairs = hsic_penalty(components, self.hsic_exclude)
            total = total + self.lambda_hsic * l_hsic
            terms["L_hsic"] = l_hsic.detach()
            terms.update({f"hsic_{k}": v.detach() for k, v in hpairs.items()})
        if s_unimodal:
            zs = l2_normalize(s_views[0] if s_syn is None else s_syn)
            l_syn = ra.new_zeros(())
            for m, h in s_unimodal.items():
                if h.dim() != 2 or h.shape[0] != zs.shape[0]:
                    raise ValueError(f"RUSLoss: unimodal representation of '{m}' must be (N={zs.shape[0]}, d), got "
                                     f"{tuple(h.shape)}")
                v = hsic(zs, h.detach())
                terms[f"L_syn_{m}"] = v.detach()
                l_syn = l_syn + v
            total = total + self.lambda_syn * l_syn
            terms["L_syn"] = l_syn.detach()
        terms.update({"L_R": l_r.detach(), "L_U": l_u.detach(), "L_S": l_s.detach(), "L_orth": l_orth.detach()})
        terms.update({f"orth_{k}": v.detach() for k, v in pairs.items()})
        return LossOutput(total, terms)
