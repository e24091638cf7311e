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

The kernels (:class:`_GramVolumes`, the fused all-anchors pass :class:`_GramAllAnchors`) live in
:mod:`mmib.objectives.projection` (shared with OVA-IB); this module keeps the loss and re-exports the volume
functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

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
from mmib.objectives.projection import numba_kernels
from mmib.objectives.projection.all_anchors import _GramAllAnchors, gram_two_modalities
from mmib.objectives.projection.layout import check_kernel, one_vs_rest_inputs, uses_inductor
from mmib.objectives.projection.volumes import (
    GRAM_RIDGE,
    VOLUME_EPS,
    gram_volume,
    volume_from_gram,
    volumes_from_gram,
)

__all__ = [
    "GRAM_RIDGE",
    "VOLUME_EPS",
    "DirectTemperature",
    "GRAMLoss",
    "gram_volume",
    "volume_from_gram",
    "volumes_from_gram",
]


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
            pass :class:`_GramAllAnchors`, its two passes as numba kernels on the CPU where numba imports
            (:mod:`mmib.objectives.projection.numba_kernels`), else as ``"torch"``; at M = 2 with nonzero rows and
            scale · vol < 80 the one-volume-matrix path :func:`gram_two_modalities`), ``"torch"`` (the same fused
            pass as PyTorch operations on cache blocks), ``"compiled"`` (the fastest compiled code for the device:
            on the CPU where numba imports the numba kernels of ``"eager"``, elsewhere ``"inductor"``) or
            ``"inductor"`` (the volume's elementwise algebra of :class:`_GramVolumes` fused by ``torch.compile``,
            then one cross-entropy per direction; needs a C++ compiler; falls back to ``"torch"`` with a warning;
            measured slower than the numba fused pass with all anchors, docs/methods/gram.md).

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
        if anchors != list(range(len(zs))) or uses_inductor(self.kernel, numba_kernels.use_numba(self.kernel, zs[0])):
            return None  # the per-anchor path (``kernel="inductor"``, or "compiled" where numba does not run)
        if len(zs) == 2 and self.positive_in_denominator:
            # M = 2: the two anchors' volume matrices are each other's transpose (unit rows): one of them, CLIP-like
            per = gram_two_modalities(zs[0], zs[1], scale, GRAM_RIDGE, VOLUME_EPS, self.label_smoothing)
            if per is not None:
                return torch.stack([per, per])
        # every modality as anchor (the default): volumes, both cross-entropies and the gradient in one fused
        # pass per block of anchor rows (_GramAllAnchors)
        return _GramAllAnchors.apply(scale, GRAM_RIDGE, VOLUME_EPS, self.label_smoothing, self.positive_in_denominator,
                                     self.kernel, *zs)

    def _anchor_measures(self, zs, cands, anchors, gathered):
        if gathered:
            return super()._anchor_measures(zs, cands, anchors, gathered)
        # all anchors in one call: each pair's Gram matrix once (shared by its two anchors), one factorization
        cross, grams, sq_norms = one_vs_rest_inputs(zs, cands, anchors)
        vols = volumes_from_gram(cross, grams, sq_norms, kernel=self.kernel)
        return [(a, v, v.T) for a, v in zip(anchors, vols)]
