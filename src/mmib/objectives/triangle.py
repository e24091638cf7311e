"""TRIANGLE: multimodal alignment by triangle area (Cicchetti et al., "A TRIANGLE Enables Multimodal Alignment
Beyond Cosine Similarity", NeurIPS 2025). Exactly three modalities.

For anchor t and the tuple (v, a) of another sample: u = t − v, w = t − a and

    area(t, v, a) = (‖u‖² ‖w‖² − (u·w)²) / 2

— the peer code omits the square root on purpose, so this is 2·(geometric area)², not the area. Logits are
−area / τ; the loss is GRAM's symmetric cross-entropy with label smoothing 0.1 and a learned τ (initialised 0.07,
used by direct division), averaged over the anchors.

**Efficient area.** The peer materializes the N×N×d differences. Every term is a Gram entry:
‖u‖² = ‖t‖² + ‖v‖² − 2 t·v, ‖w‖² = ‖t‖² + ‖a‖² − 2 t·a, u·w = ‖t‖² − t·v − t·a + v·a, so the N×N logits need
only the matmuls pairwise CLIP does plus O(N²) elementwise work.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mmib.objectives.gram import _TupleContrastive


def triangle_area(anchors: torch.Tensor, tuples: Sequence[torch.Tensor]) -> torch.Tensor:
    """TRIANGLE's (square-root-free) area of (anchor_a, v_t, a_t) for all pairs (Na, Nt); ``tuples`` = (v, a)."""
    if len(tuples) != 2:
        raise ValueError(f"triangle_area: needs a tuple of exactly 2 modalities, got {len(tuples)}")
    v, a = tuples
    tt = (anchors * anchors).sum(-1)[:, None]
    vv = (v * v).sum(-1)[None, :]
    aa = (a * a).sum(-1)[None, :]
    va = (v * a).sum(-1)[None, :]
    tv = anchors @ v.T
    ta = anchors @ a.T
    uu = tt + vv - 2 * tv
    ww = tt + aa - 2 * ta
    uw = tt - tv - ta + va
    return 0.5 * (uu * ww - uw * uw)


class TriangleLoss(_TupleContrastive):
    """TRIANGLE contrastive loss (Cicchetti et al., NeurIPS 2025) for exactly M = 3 modalities.

    Args:
        temperature: τ > 0 (peer: 0.07); logits are −area / τ.
        learn_temperature: learn τ directly (no exp), as GRAM's code which TRIANGLE's builds on (default True).
        label_smoothing: cross-entropy label smoothing in [0, 1) (peer: 0.1).
        anchor: the anchor modality (peer: text), a list of them, or None (default) = each of the three in turn,
            averaged ([decision], docs/methods/triangle.md).
        positive_in_denominator: standard InfoNCE (True) or the decoupled form (requires ``label_smoothing=0``).
        gather_distributed: take negatives from all processes (with gradients); a no-op without a process group.
        min_temperature: floor of a learned τ (default ``min(1e-3, temperature)``; any value in (0, temperature]).

    Raises:
        ValueError: on bad arguments, and at call time when the number of modalities is not 3.

    Example:
        >>> loss_fn = TriangleLoss()
        >>> out = loss_fn({k: torch.randn(8, 16) for k in ("text", "video", "audio")})
        >>> out.loss.shape
        torch.Size([])
    """

    _term = "triangle"

    def __init__(
        self,
        temperature: float = 0.07,
        learn_temperature: bool = True,
        label_smoothing: float = 0.1,
        anchor: str | Sequence[str] | None = None,
        positive_in_denominator: bool = True,
        gather_distributed: bool = False,
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

    def _check_m(self, m: int) -> None:
        if m != 3:
            raise ValueError(
                f"TriangleLoss: TRIANGLE is defined for exactly 3 modalities (a triangle), got {m}; "
                "use GRAMLoss or OVAIBLoss for other M"
            )

    def _measure(self, anchors: torch.Tensor, tuples: Sequence[torch.Tensor]) -> torch.Tensor:
        return triangle_area(anchors, tuples)
