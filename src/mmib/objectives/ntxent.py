"""NT-Xent, SimCLR's normalized-temperature cross entropy (Chen et al., ICML 2020, Eq. 1).

For two views ``a, b`` (N, d), every one of the 2N embeddings is an anchor whose positive is its partner in the
other view and whose candidates are the other 2N − 1 embeddings (same-view negatives included):

    ℓ(i) = −log exp(s(z_i, z_p(i))/τ) / Σ_{k ≠ i} exp(s(z_i, z_k)/τ),   loss = mean over the 2N anchors,

s = cosine similarity. This is the InfoNCE form CoMM's code uses for every term (Duplums/CoMM ``losses/``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mmib.objectives.base import LossOutput, Temperature, check_embeddings, l2_normalize
from mmib.utils.dist import gather_with_grad, is_dist, local_offset


def nt_xent(za: torch.Tensor, zb: torch.Tensor, scale: torch.Tensor | float, normalized: bool = False,
            gather_distributed: bool = False) -> torch.Tensor:
    """NT-Xent between views ``za`` and ``zb`` (N, d); ``scale`` = 1/τ. ``normalized=True`` skips the L2
    normalization. With ``gather_distributed`` the candidates come from every process (with gradients)."""
    if za.shape != zb.shape or za.dim() != 2:
        raise ValueError(f"nt_xent: views must be 2-D with equal shapes, got {tuple(za.shape)} and {tuple(zb.shape)}")
    if za.shape[0] < 2:
        raise ValueError("nt_xent: needs at least 2 samples (no negatives otherwise)")
    if not normalized:
        za, zb = l2_normalize(za), l2_normalize(zb)
    n = za.shape[0]
    local = torch.cat([za, zb])  # (2N, d) anchors
    if gather_distributed and is_dist():
        ga, gb = gather_with_grad(za), gather_with_grad(zb)
        big = ga.shape[0]
        cand = torch.cat([ga, gb])
        off = local_offset(n)
        idx = torch.arange(n, device=za.device) + off
        self_col = torch.cat([idx, idx + big])
        pos_col = torch.cat([idx + big, idx])
    else:
        cand = local
        idx = torch.arange(n, device=za.device)
        self_col = torch.cat([idx, idx + n])
        pos_col = torch.cat([idx + n, idx])
    logits = scale * (local @ cand.T)
    rows = torch.arange(2 * n, device=za.device)
    logits = logits.index_put((rows, self_col), torch.tensor(float("-inf"), dtype=logits.dtype, device=logits.device))
    return nn.functional.cross_entropy(logits, pos_col)


class NTXentLoss(nn.Module):
    """SimCLR's NT-Xent between two views of the same samples.

    Args:
        temperature: τ > 0 (SimCLR / CoMM: 0.1).
        learn_temperature: learn τ instead of keeping it fixed.
        min_temperature: floor of a learned τ (default ``min(1e-3, temperature)``; any value in (0, temperature]).
        gather_distributed: take negatives from every process (no-op without a process group).

    Raises:
        ValueError: for a bad temperature or inputs that are not two equal-shape (N, d) tensors with N >= 2.

    Example:
        >>> out = NTXentLoss(0.1)([torch.randn(8, 16), torch.randn(8, 16)])
        >>> out.loss.shape
        torch.Size([])
    """

    def __init__(self, temperature: float = 0.1, learn_temperature: bool = False, gather_distributed: bool = False,
                 min_temperature: float | None = None):
        super().__init__()
        self.temperature = Temperature(temperature, learnable=learn_temperature, min_temperature=min_temperature)
        self.gather_distributed = bool(gather_distributed)

    def forward(self, views: Mapping[str, torch.Tensor] | Sequence[torch.Tensor]) -> LossOutput:
        keys, zs = check_embeddings(views, 2, "NTXentLoss")
        if len(zs) != 2:
            raise ValueError(f"NTXentLoss: takes exactly 2 views, got {len(zs)}")
        loss = nt_xent(zs[0], zs[1], self.temperature.scale(), gather_distributed=self.gather_distributed)
        return LossOutput(loss, {f"ntxent_{keys[0]}_{keys[1]}": loss.detach()})
