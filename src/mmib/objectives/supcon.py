"""Supervised contrastive loss (Khosla et al., NeurIPS 2020, Eq. 2, L^sup_out), the SupCon baseline of FactorCL
and CoMM (FactorCL code: ``SupConLoss``, τ = 0.07).

Embeddings come as V views of N samples (here: the modalities, optionally several augmented views each). Every one of
the N·V embeddings is an anchor i with A(i) = every other embedding and P(i) = the other embeddings with i's label:

    L = (τ / τ_base) · mean_i [ −1/|P(i)| Σ_{p ∈ P(i)} log exp(z_i·z_p/τ) / Σ_{a ∈ A(i)} exp(z_i·z_a/τ) ]

(z L2-normalized). Without labels, P(i) = the other views of i's sample (SimCLR / multi-view InfoNCE).

With ``gather_distributed`` (and a process group) the anchors are this process's N·V embeddings and A(i), P(i) range
over the embeddings (and labels) of every process, all-gathered with gradients by
:func:`mmib.objectives.base.gather_candidates` as in the other contrastive objectives; the mean over processes of
the per-process losses is then the loss of the whole global batch (equal per-process batch sizes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mmib.objectives.base import LossOutput, Temperature, check_embeddings, gather_candidates, l2_normalize
from mmib.utils.dist import gather_with_grad


def supcon_loss(views: Sequence[torch.Tensor], labels: torch.Tensor | None, scale: torch.Tensor | float,
                base_temperature: float | None = None, gather_distributed: bool = False) -> torch.Tensor:
    """SupCon over a list of V views (N, d) of the same samples; ``labels`` (N,) or ``None`` (self-supervised).

    With ``gather_distributed`` the candidates and positives come from every process (see the module docstring)."""
    v = len(views)
    n = views[0].shape[0]
    if labels is not None and labels.shape != (n,):
        raise ValueError(f"supcon: labels must have shape ({n},), got {tuple(labels.shape)}")
    zv = [l2_normalize(z) for z in views]
    z = torch.cat(zv)  # (V·N, d) anchors, view-major
    cands, local_idx = gather_candidates(zv, gather_distributed)  # local_idx: this process's rows among them
    big = cands[0].shape[0]  # N, or the global batch W·N
    c = torch.cat(cands)  # (V·big, d), view-major
    if labels is None:
        sample_all = torch.arange(big, device=z.device).repeat(v)
        sample = local_idx.repeat(v)
    else:
        labels = labels.to(z.device)
        all_labels = gather_with_grad(labels) if gather_distributed else labels
        sample_all, sample = all_labels.repeat(v), labels.repeat(v)
    logits = scale * (z @ c.T)  # (V·N, V·big)
    self_col = torch.cat([local_idx + k * big for k in range(v)])
    is_self = torch.zeros(v * n, v * big, dtype=torch.bool, device=z.device)
    is_self[torch.arange(v * n, device=z.device), self_col] = True
    logits = logits.masked_fill(is_self, float("-inf"))
    log_prob = logits - logits.logsumexp(1, keepdim=True)
    pos = (sample[:, None] == sample_all[None, :]) & ~is_self
    n_pos = pos.sum(1)
    if bool((n_pos == 0).any()):
        raise ValueError("supcon: an anchor has no positive (needs >= 2 views, or >= 2 samples per label)")
    per_anchor = -(log_prob.masked_fill(~pos, 0.0)).sum(1) / n_pos
    loss = per_anchor.mean()
    if base_temperature is not None:
        loss = loss / (scale * base_temperature)
    return loss


class SupConLoss(nn.Module):
    """Supervised contrastive loss over views (modalities and/or augmentations).

    Args:
        temperature: τ > 0 (Khosla et al.; FactorCL code: 0.07).
        base_temperature: multiply the loss by τ/τ_base as the reference code does (``None``: no factor).
        learn_temperature: learn τ.
        min_temperature: floor of a learned τ (default ``min(1e-3, temperature)``; any value in (0, temperature]).
        gather_distributed: take candidates and positives from every process (with gradients); a no-op without a
            process group.

    ``forward(views, labels)``: ``views`` a mapping or list of (N, d) tensors (>= 1 view; with one view and
    labels, positives are the other same-label samples), ``labels`` (N,) integer classes or ``None``.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> loss_fn = SupConLoss(temperature=0.1)
        >>> views = {"a": torch.randn(8, 16), "b": torch.randn(8, 16)}
        >>> out = loss_fn(views, torch.tensor([0, 0, 1, 1, 2, 2, 3, 3]))
        >>> out.loss.shape, sorted(out.terms), bool(out.loss > 0)
        (torch.Size([]), ['supcon'], True)
        >>> z = torch.nn.functional.normalize(torch.randn(4, 16), dim=1)  # two views equal, one sample per class:
        >>> bool(loss_fn([z, z], torch.arange(4)).loss < loss_fn([z, -z], torch.arange(4)).loss)  # agreeing: lower
        True
    """

    def __init__(self, temperature: float = 0.07, base_temperature: float | None = 0.07,
                 learn_temperature: bool = False, gather_distributed: bool = False,
                 min_temperature: float | None = None) -> None:
        super().__init__()
        self.temperature = Temperature(temperature, learnable=learn_temperature, min_temperature=min_temperature)
        if base_temperature is not None and not base_temperature > 0:
            raise ValueError(f"SupConLoss: base_temperature must be > 0 or None, got {base_temperature!r}")
        self.base_temperature = base_temperature
        self.gather_distributed = bool(gather_distributed)

    def forward(self, views: Mapping[str, torch.Tensor] | Sequence[torch.Tensor],
                labels: torch.Tensor | None = None) -> LossOutput:
        _, zs = check_embeddings(views, 1, "SupConLoss")
        if labels is None and len(zs) < 2:
            raise ValueError("SupConLoss: without labels it needs at least 2 views")
        if labels is not None and labels.is_floating_point():
            raise ValueError("SupConLoss: labels must be integer class indices")
        loss = supcon_loss(zs, labels, self.temperature.scale(), self.base_temperature, self.gather_distributed)
        return LossOutput(loss, {"supcon": loss.detach()})
