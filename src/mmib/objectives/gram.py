"""GRAM: Gramian multimodal alignment (Cicchetti et al., "Gramian Multimodal Representation Learning and Alignment",
ICLR 2025), generalized to any M ≥ 2 and any anchor modality.

The k = M L2-normalized embeddings of a candidate tuple span a parallelotope of volume vol = sqrt(det G),
G_ij = ⟨z_i, z_j⟩ (GRAM Eq. 4). For anchor modality m, the logits of anchor row n against the tuple of sample n′
are −vol(z_n^(m), z_{n′}^{[M]\\(m)}) / τ; the loss is the symmetric (anchor→tuple, tuple→anchor) cross-entropy with
label smoothing 0.1 (GRAM Eq. 6, peer code ``ispamm/GRAM``), averaged over the anchors.

**Efficient volume.** The peer builds N² stacked M×M Gram matrices and calls ``torch.det`` on them. Here, with the
anchor a and the tuple's Gram matrix K = AᵀA (one per candidate), the Schur complement gives
det G = det K · (‖a‖² − cᵀK^{-1}c), c = Aᵀa; c comes from the pairwise Gram matrices (the matmuls pairwise CLIP
does), K is factored once per *candidate* (float64 Cholesky, with a ridge of 1e-10 so that a repeated vector in the
tuple — volume 0 — stays finite). ``torch.det``'s gradient is also wrong at singular matrices (it returns 0 instead
of the adjugate); the Schur form does not have that problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mmib.objectives import _fused
from mmib.objectives.base import (
    LossOutput,
    _OffsetScalar,
    check_embeddings,
    check_queries,
    contrastive_ce,
    gather_candidates,
    l2_normalize,
    resolve_min_temperature,
)
from mmib.objectives.ova_ib import (
    _blocks,
    _coefficient_columns,
    _lower_inplace,
    _pair_backward,
    _pair_cross,
    _tuple_factors,
    _upper_inplace,
    check_kernel,
    factor_tuple_grams,
    flat_anchor_inputs,
    one_vs_rest_inputs,
    tuple_gram,
)

#: ridge added to the tuple Gram matrix before its Cholesky factorization (float64; changes det G by O(1e-10))
GRAM_RIDGE = 1e-10
#: volumes are sqrt(max(det G, VOLUME_EPS)) so that the gradient of a zero volume stays finite
VOLUME_EPS = 1e-20
_WHO = "GRAM kernel='compiled'"


class DirectTemperature(_OffsetScalar):
    """A temperature τ used by dividing directly (logits = similarity / τ), fixed or learned as τ itself.

    This is GRAM's and TRIANGLE's parameterization (peer code: ``nn.Parameter(torch.tensor(0.07))``, no exp).
    Unlike the peer, a learned τ is clamped at ``min_temperature`` in :meth:`scale` (default ``min(1e-3,
    temperature)``, any value in (0, temperature] can be configured), so it can never reach 0 or go negative. τ is
    ``temperature + tau_offset`` with the initial value held as a Python float (exact when cast to float64).

    Raises:
        ValueError: if ``temperature`` is not a finite number > 0 or ``min_temperature`` is not in (0, temperature].
    """

    _offset_name = "tau_offset"
    _legacy_name = "tau"

    def __init__(
        self, temperature: float = 0.07, learnable: bool = True, min_temperature: float | None = None
    ) -> None:
        floor = resolve_min_temperature(temperature, min_temperature)
        super().__init__(float(temperature), learnable)
        self.min_temperature = floor
        self.initial = float(temperature)

    @property
    def tau(self) -> torch.Tensor:
        """τ before the clamp."""
        return self.raw()

    def scale(self) -> torch.Tensor:
        """1/τ, to multiply similarities with."""
        return 1.0 / (self.raw().clamp_min(self.min_temperature) if self.learnable else self.raw())

    @property
    def value(self) -> float:
        return float(1.0 / self.scale().detach())

    def extra_repr(self) -> str:
        return (f"temperature={self.value:.4g}, learnable={self.learnable}, min_temperature={self.min_temperature:.3g}"
                ", parameterization=direct")


class _GramVolumes(torch.autograd.Function):
    """vol = √max(det K · (‖a‖² − cᵀK⁻¹c), ε) for A anchor modalities at once, with a hand-written backward.

    Inputs as :class:`mmib.objectives.ova_ib._ProjectionScores`: ``grams`` (A, Nt, k, k), ``sq_norms`` (A, Na) and
    A·k cross matrices (Na, Nt). K = AᵀA + ridge·I = L Lᵀ per candidate (float64), y = L⁻¹c, w = L⁻ᵀy = K⁻¹c; the
    backward uses ∂(cᵀK⁻¹c)/∂c = 2w, ∂(cᵀK⁻¹c)/∂K = −wwᵀ and ∂det K/∂K = det K · K⁻¹. The elementwise algebra is
    :func:`mmib.objectives._fused.volume_forward` / ``volume_backward`` on candidate-major (Nt, Na) arrays, run
    as is (``kernel="eager"``) or fused by ``torch.compile`` (``"compiled"``; eager with a warning if compilation
    fails).
    """

    @staticmethod
    def forward(ctx, grams, sq_norms, ridge, kernel, *cross):  # noqa: D102
        n_anchor, nt, k, _ = grams.shape
        dtype = cross[0].dtype
        chol, linv = factor_tuple_grams(grams, ridge, "GRAM volume")  # (A, Nt, k, k)
        det_k = torch.diagonal(chol, dim1=-2, dim2=-1).prod(-1) ** 2  # (A, Nt), float64
        coef = _coefficient_columns(linv, dtype)
        det_col = det_k.to(dtype).unsqueeze(-1)  # (A, Nt, 1)
        sq = sq_norms.to(dtype).unsqueeze(1)  # (A, 1, Na)
        xs = [c.T.contiguous() for c in cross]
        ctx.kernel = kernel
        out = _fused.run("volumes_forward", kernel, xs, coef, det_col, sq, VOLUME_EPS, who=_WHO)
        del xs
        ctx.n_anchor = n_anchor
        ctx.grams_dtype, ctx.sq_dtype = grams.dtype, sq_norms.dtype
        ctx.save_for_backward(linv, det_k, *[t for st in out for t in st])
        return tuple(st[0].T for st in out)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, *grad_out):  # noqa: D102
        linv, det_k, *saved = ctx.saved_tensors
        n_anchor, nt, k, _ = linv.shape
        per = len(saved) // n_anchor
        states = [saved[a * per : (a + 1) * per] for a in range(n_anchor)]
        dtype = states[0][0].dtype
        gv = [g.T.contiguous() if g is not None else torch.zeros_like(st[0]) for g, st in zip(grad_out, states)]
        det_col = det_k.to(dtype).unsqueeze(-1)
        out = _fused.run("volumes_backward", ctx.kernel, gv, states, det_col, VOLUME_EPS, who=_WHO)
        k_inv = linv.mT @ linv  # (A, Nt, k, k) float64
        grad_grams = linv.new_empty(linv.shape)
        grad_sq, grad_cross = [], []
        for a, (*gc, upper, g_det, g_sq) in enumerate(out):
            # ∂L/∂K = Σ_a g det K · w wᵀ (from −det K · cᵀK⁻¹c) + (Σ_a g r) · det K · K⁻¹ (from det K)
            full = _fused.upper_to_full(upper, k).to(linv.dtype)
            grad_grams[a] = full + (g_det.to(linv.dtype) * det_k[a])[:, None, None] * k_inv[a]
            grad_sq.append(g_sq)
            grad_cross += [g.T for g in gc]
        return (grad_grams.to(ctx.grams_dtype), torch.stack(grad_sq).to(ctx.sq_dtype), None, None, *grad_cross)


class _GramAllAnchors(torch.autograd.Function):
    """GRAM's loss for every anchor, L^(a) = ½ [CE_rows(−scale·vol_a) + CE_cols(−scale·vol_a)] with label smoothing,
    from the M unit embeddings in two passes over the N×N blocks, with the gradient formed in the forward (the
    default path of :class:`GRAMLoss`: all modalities as anchors, candidates the local embeddings).

    As :class:`mmib.objectives.ova_ib._OneVsAllSufficiency`: anchor-major blocks of all anchors at once, the Gram
    matmuls one per pair of modalities, the Cholesky factors entry by entry. Pass 1 computes the volumes (y = L⁻¹c
    and w = L⁻ᵀy in place of the cross entries), the rows' logsumexp and, online, the columns' (running max and
    sum); pass 2 the gradient: with G = ½ (softmax_rows + softmax_cols − 2(1−ε) onehot − 2ε/N) (per unit of 1/N),
    ∂L/∂vol = −scale G, g = ∂L/∂vol / (2 vol) (0 where det G was clamped), ∂L/∂c = −2 g det K w,
    ∂L/∂K = Σ_anchors g det K w wᵀ + (Σ_anchors g r) det K K⁻¹, ∂L/∂‖a‖² = Σ_t g det K, ∂L/∂scale = −Σ G vol.
    Label-smoothed CE = (1−ε) CE + ε mean_t(−log softmax) needs only each row's (column's) logsumexp and mean.

    Inputs: ``scale`` (0-d, 1/τ), ``ridge``, ``eps`` (volume floor), ``smoothing``, ``positive_in_denominator``, the
    M unit embeddings. Output: (M,) losses.
    """

    @staticmethod
    def forward(ctx, scale, ridge, eps, smoothing, positive_in_denominator, *zs):  # noqa: D102
        m, k = len(zs), len(zs) - 1
        n = zs[0].shape[0]
        dtype, device = zs[0].dtype, zs[0].device
        need_grad = any(ctx.needs_input_grad)
        beta = float(scale)
        cross = _pair_cross(zs)
        zstack, full, inv, kinv, det = _tuple_factors(zs, float(ridge), "GRAM volume")
        coef = [[inv[i][j].to(dtype).view(m, 1, n) for j in range(i + 1)] for i in range(k)]
        det_row = det.to(dtype).view(m, 1, n)
        sq = torch.diagonal(full, dim1=1, dim2=2).T.to(dtype)  # (M, N) ‖a‖²
        vol = zs[0].new_empty(m, n, n)
        lse_row = zs[0].new_empty(m, n)
        col_max = zs[0].new_full((m, n), torch.finfo(dtype).min)  # finite: a block may hide a whole column
        col_sum = zs[0].new_zeros(m, n)
        mean_row = zs[0].new_empty(m, n)
        mean_col = zs[0].new_zeros(m, n)
        diag_l = zs[0].new_empty(m, n)
        masks: dict[int, torch.Tensor] = {}
        blocks = _blocks(n, m * n, device)
        for bi, r in enumerate(blocks):  # pass 1: volumes, row logsumexp, column logsumexp online
            r0 = r.start
            xs = cross[:, :, r].unbind(1)
            _lower_inplace(xs, coef)  # y = L⁻¹c
            q = xs[0] * xs[0]
            for i in range(1, k):
                q.addcmul_(xs[i], xs[i])
            _upper_inplace(xs, coef)  # w = L⁻ᵀy = K⁻¹c, kept for pass 2
            dg = torch.sub(sq[:, r, None], q).mul_(det_row)  # det G = det K (‖a‖² − cᵀK⁻¹c)
            if bool(dg.min() <= eps):
                masks[bi] = dg > eps
                dg.clamp_min_(eps)
            v = torch.sqrt(dg, out=vol[:, r])
            logits = v * (-beta)
            diag_l[:, r] = logits.diagonal(r0, 1, 2)
            mean_row[:, r] = logits.mean(-1)
            mean_col.add_(logits.sum(1), alpha=1.0 / n)
            if not positive_in_denominator:
                logits.diagonal(r0, 1, 2).fill_(float("-inf"))
            lse_row[:, r] = torch.logsumexp(logits, -1)
            new_max = torch.maximum(col_max, logits.amax(1))
            col_sum.mul_((col_max - new_max).exp_()).add_(logits.sub_(new_max[:, None]).exp_().sum(1))
            col_max = new_max
        lse_col = col_sum.log_().add_(col_max)
        sm = float(smoothing)
        ce_row = lse_row - (1.0 - sm) * diag_l - sm * mean_row
        ce_col = lse_col - (1.0 - sm) * diag_l - sm * mean_col
        loss = 0.5 * (ce_row.mean(1) + ce_col.mean(1))
        if not need_grad:
            return loss
        pairs = [(i, j) for j in range(k) for i in range(j + 1)]
        acc = zs[0].new_zeros(m, len(pairs), blocks[0].stop, n)  # Σ_rows g det K w_i w_j, reduced at the end
        g_det = zs[0].new_zeros(m, n)  # Σ_rows g r
        grad_sq = zs[0].new_empty(m, n)
        gvol = zs[0].new_zeros(m)
        shift = 2.0 * sm / n
        for bi, r in enumerate(blocks):  # pass 2: the gradient
            r0, rb = r.start, r.stop - r.start
            v = vol[:, r]
            logits = v * (-beta)
            g = torch.sub(logits, lse_row[:, r, None]).exp_()
            g.add_(torch.sub(logits, lse_col[:, None, :]).exp_())
            gd = g.diagonal(r0, 1, 2)
            if positive_in_denominator:
                gd.sub_(2.0 * (1.0 - sm))
            else:
                gd.fill_(-2.0)
            if shift:
                g.sub_(shift)
            gv = g * v  # Σ G vol → ∂/∂scale; G vol / (2 det K) = G r / (2 vol)
            gvol.add_(gv.sum((1, 2)))
            gr = g.div_(v).mul_(0.5)  # G / (2 vol)
            if bi in masks:
                gr.mul_(masks[bi])
                gv.mul_(masks[bi])
            g_det.add_(gv.sum(1), alpha=0.5)  # Σ_rows G r / (2 vol) · det K
            gd_ = gr.mul_(det_row)  # G det K / (2 vol)
            grad_sq[:, r] = gd_.sum(-1)
            w = cross[:, :, r]
            e = w * gd_[:, None]  # (M, k, rb, N)
            es, ws = e.unbind(1), w.unbind(1)
            for p_, (i, j) in enumerate(pairs):
                acc[:, p_, :rb].addcmul_(es[i], ws[j])
            w.copy_(e)  # ∂L/∂c = −2 G det K w / (2 vol), per unit of −2 (−scale/N)(½): into the cross block
        # per unit of α = −scale/(2N) (½ from the average of the two directions, 1/N from the means):
        sym = [pairs.index((min(i, j), max(i, j))) for i in range(k) for j in range(k)]
        s1 = acc.sum(2)[:, sym].to(kinv.dtype).permute(0, 2, 1).reshape(m, n, k, k)
        grad_k = s1 + g_det.to(kinv.dtype)[:, :, None, None] * kinv  # + (Σ_rows G r / (2 vol)) · det K · K⁻¹
        ctx.save_for_backward(cross, grad_k, grad_sq.to(kinv.dtype), gvol, zstack, *zs)
        ctx.beta, ctx.n = beta, n
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):  # noqa: D102
        cross, grad_k, grad_sq, gvol, zstack, *zs = ctx.saved_tensors
        c = grad_loss.to(grad_k.dtype) * (-0.5 * ctx.beta / ctx.n)  # ∂L/∂vol = −scale·½·G/N
        grads = _pair_backward(cross, zs, zstack, (-2.0 * c).tolist(), c, grad_k, grad_sq)
        g_scale = None
        if ctx.needs_input_grad[0]:  # ∂L/∂scale = Σ (½ G/N)(−vol)
            g_scale = (grad_loss.to(gvol.dtype) * gvol).sum() * (-0.5 / ctx.n)
        return g_scale, None, None, None, None, *grads


def volumes_from_gram(
    cross: Sequence[Sequence[torch.Tensor]],
    grams: torch.Tensor,
    anchor_sq_norms: torch.Tensor,
    ridge: float = GRAM_RIDGE,
    kernel: str = "eager",
) -> tuple[torch.Tensor, ...]:
    """:func:`volume_from_gram` for A anchors in one call (what :class:`GRAMLoss` uses per step).

    ``cross[a]``: the k cross matrices (Na, Nt) of anchor a (they may be shared between anchors); ``grams``
    (A, Nt, k, k); ``anchor_sq_norms`` (A, Na). Returns A volume matrices (Na, Nt).
    """
    flat = flat_anchor_inputs(cross, grams, anchor_sq_norms, "GRAM volumes")
    return _GramVolumes.apply(grams, anchor_sq_norms, float(ridge), check_kernel(kernel), *flat)


def volume_from_gram(
    cross: Sequence[torch.Tensor],
    gram: torch.Tensor,
    anchor_sq_norm: torch.Tensor,
    ridge: float = GRAM_RIDGE,
    kernel: str = "eager",
) -> torch.Tensor:
    """Volume sqrt(det G) of [anchor_a, tuple_t] for all pairs (Na, Nt), from Gram entries (Schur complement).

    ``cross``: k tensors (Na, Nt) of ⟨anchor, tuple^(i)⟩; ``gram``: (Nt, k, k) tuple Gram matrices;
    ``anchor_sq_norm``: (Na,).
    """
    return volumes_from_gram([list(cross)], gram[None], anchor_sq_norm[None], ridge, kernel)[0]


def gram_volume(anchors: torch.Tensor, tuples: Sequence[torch.Tensor], kernel: str = "eager") -> torch.Tensor:
    """Volume of the parallelotope spanned by anchor row a and tuple row t, for all pairs → (Na, Nt).

    The vectors are used as given (the objective L2-normalizes them first).
    """
    cross = [anchors @ t.T for t in tuples]
    return volume_from_gram(cross, tuple_gram(tuples), (anchors * anchors).sum(-1), kernel=kernel)


def _resolve_anchors(anchor: str | Sequence[str] | None, keys: list[str], name: str) -> list[int]:
    if anchor is None:
        return list(range(len(keys)))
    wanted = [anchor] if isinstance(anchor, str) else list(anchor)
    bad = [a for a in wanted if a not in keys]
    if bad or not wanted:
        raise ValueError(f"{name}: anchor {bad or wanted!r} is not among the modalities {keys}")
    return [keys.index(a) for a in wanted]


class _TupleContrastive(nn.Module):
    """Shared machinery of GRAM and TRIANGLE: symmetric CE(−measure/τ) of anchors against tuples."""

    _name = "tuple contrastive"

    def __init__(
        self,
        temperature: float,
        learn_temperature: bool,
        label_smoothing: float,
        anchor: str | Sequence[str] | None,
        positive_in_denominator: bool,
        gather_distributed: bool,
        min_temperature: float | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(label_smoothing, (int, float)) or not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing!r}")
        if label_smoothing and not positive_in_denominator:
            raise ValueError(
                "label_smoothing must be 0 when positive_in_denominator=False (smoothing needs the positive among "
                "the classes)"
            )
        if anchor is not None and not isinstance(anchor, str):
            anchor = tuple(anchor)
        self.temperature = DirectTemperature(temperature, learn_temperature, min_temperature)
        self.label_smoothing = float(label_smoothing)
        self.anchor = anchor
        self.positive_in_denominator = bool(positive_in_denominator)
        self.gather_distributed = bool(gather_distributed)

    def _measure(self, anchors: torch.Tensor, tuples: Sequence[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def _anchor_measures(
        self, zs: list[torch.Tensor], cands: list[torch.Tensor], anchors: list[int], gathered: bool
    ) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
        """(anchor, anchor → tuple measures (n_local, N_all), tuple → anchor measures (n_local, N_all)) per anchor."""
        out = []
        for a in anchors:
            others = [b for b in range(len(zs)) if b != a]
            meas = self._measure(zs[a], [cands[b] for b in others])  # (n_local, N_all): anchor → tuple
            if gathered:
                meas_t = self._measure(cands[a], [zs[b] for b in others]).T  # (n_local tuples, N_all anchors)
            else:
                meas_t = meas.T
            out.append((a, meas, meas_t))
        return out

    def _check_m(self, m: int) -> None:
        pass

    def _fused_losses(self, zs: list[torch.Tensor], anchors: list[int], scale: torch.Tensor) -> torch.Tensor | None:
        """The per-anchor losses (A,) computed in one fused pass, or None (then the measures and cross-entropies
        are computed one by one)."""
        return None

    def forward(self, embeddings: Mapping[str, torch.Tensor] | Sequence[torch.Tensor]) -> LossOutput:
        keys, zs = check_embeddings(embeddings, 2, type(self).__name__)
        self._check_m(len(zs))
        anchors = _resolve_anchors(self.anchor, keys, type(self).__name__)
        zs = [l2_normalize(z) for z in zs]
        cands, targets = gather_candidates(zs, self.gather_distributed)
        gathered = cands[0] is not zs[0]
        scale = self.temperature.scale()
        terms: dict[str, torch.Tensor] = {}
        per = None if gathered else self._fused_losses(zs, anchors, scale)
        if per is None:
            losses = []
            for _, meas, meas_t in self._anchor_measures(zs, cands, anchors, gathered):
                losses.append(0.5 * (
                    contrastive_ce(-scale * meas, self.positive_in_denominator, self.label_smoothing, targets)
                    + contrastive_ce(-scale * meas_t, self.positive_in_denominator, self.label_smoothing, targets)
                ))
            per = torch.stack(losses)
        for a, la in zip(anchors, per.detach().unbind(0)):
            terms[f"{self._term}_{keys[a]}"] = la
        loss = per.mean()
        terms["temperature"] = (1.0 / scale).detach()
        return LossOutput(loss, terms)

    def score(
        self, queries: Mapping[str, torch.Tensor] | Sequence[torch.Tensor], candidates: torch.Tensor
    ) -> torch.Tensor:
        """Retrieval score (Nq, Nc) = −measure(candidate, query tuple) on L2-normalized embeddings."""
        _, qs = check_queries(queries, candidates, f"{type(self).__name__}.score")
        self._check_m(len(qs) + 1)
        return -self._measure(l2_normalize(candidates), [l2_normalize(q) for q in qs]).T


class GRAMLoss(_TupleContrastive):
    """GRAM contrastive loss (Cicchetti et al., ICLR 2025, Eqs. 4–6) for any M ≥ 2.

    Args:
        temperature: τ > 0 (peer: learned, initialised 0.07); logits are −volume / τ.
        learn_temperature: learn τ directly (no exp), as the peer does.
        label_smoothing: cross-entropy label smoothing in [0, 1) (peer: 0.1).
        anchor: the anchor modality (peer: text), a list of them, or None (default) = every modality in turn,
            averaged ([decision], docs/methods/gram.md).
        positive_in_denominator: standard InfoNCE (True) or the decoupled form (requires ``label_smoothing=0``).
        gather_distributed: take negatives from all processes (with gradients); a no-op without a process group.
        min_temperature: floor of a learned τ (default ``min(1e-3, temperature)``; any value in (0, temperature]).
        kernel: ``"eager"`` (default; with every modality as anchor and local candidates, the loss is the fused
            pass :class:`_GramAllAnchors`) or ``"compiled"`` (the volume's elementwise algebra of
            :class:`_GramVolumes` fused by ``torch.compile``, then one cross-entropy per direction; needs a C++
            compiler; falls back to eager with a warning; measured slower than the default's fused pass with all
            anchors, docs/methods/gram.md).

    Raises:
        ValueError: on a non-positive temperature, label smoothing outside [0, 1), smoothing with the decoupled
            form, an unknown kernel, or an anchor that is not one of the modalities (at the first call).

    Example:
        >>> loss_fn = GRAMLoss()
        >>> out = loss_fn({k: torch.randn(8, 16) for k in ("text", "video", "audio")})
        >>> out.loss.shape
        torch.Size([])
    """

    _term = "gram"

    def __init__(
        self,
        temperature: float = 0.07,
        learn_temperature: bool = True,
        label_smoothing: float = 0.1,
        anchor: str | Sequence[str] | None = None,
        positive_in_denominator: bool = True,
        gather_distributed: bool = False,
        kernel: str = "eager",
        min_temperature: float | None = None,
    ) -> None:
        super().__init__(
            temperature,
            learn_temperature,
            label_smoothing,
            anchor,
            positive_in_denominator,
            gather_distributed,
            min_temperature,
        )
        self.kernel = check_kernel(kernel)

    def _measure(self, anchors: torch.Tensor, tuples: Sequence[torch.Tensor]) -> torch.Tensor:
        return gram_volume(anchors, tuples, kernel=self.kernel)

    def _fused_losses(self, zs, anchors, scale):
        if self.kernel != "eager" or anchors != list(range(len(zs))):
            return None
        # every modality as anchor (the default): volumes, both cross-entropies and the gradient in one fused
        # pass per block of anchor rows (_GramAllAnchors)
        return _GramAllAnchors.apply(scale, GRAM_RIDGE, VOLUME_EPS, self.label_smoothing, self.positive_in_denominator,
                                     *zs)

    def _anchor_measures(self, zs, cands, anchors, gathered):
        if gathered:
            return super()._anchor_measures(zs, cands, anchors, gathered)
        # all anchors in one call: each pair's Gram matrix once (shared by its two anchors), one factorization
        cross, grams, sq_norms = one_vs_rest_inputs(zs, cands, anchors)
        vols = volumes_from_gram(cross, grams, sq_norms, kernel=self.kernel)
        return [(a, v, v.T) for a, v in zip(anchors, vols)]
