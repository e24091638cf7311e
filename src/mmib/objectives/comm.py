"""CoMM's loss (Dufumier, Castillo-Navarro et al., "What to align in multimodal contrastive learning?", ICLR 2025,
Eq. 7 and App. D Algorithm 1), in the form of the authors' code (Duplums/CoMM ``losses/comm_loss.py``):

    L_CoMM = L + Σ_i L_i
    L   = NT-Xent(Z', Z'')                                       (≈ R + S + Σ_i U_i)
    L_i = ½ [ NT-Xent(Z'_i, Z'') + NT-Xent(Z''_i, Z') ]          (≈ R + U_i)

Z', Z'' are the fused embeddings of two augmented views of all modalities; Z'_i, Z''_i those of the same views with
every modality but i dropped (Z_i = f(X_i), paper §3.3). NT-Xent is SimCLR's (2N − 1 candidates per anchor, same-view
negatives included, symmetric), at a fixed temperature τ (code: 0.1).

The fast path normalizes every embedding once and computes each similarity block once: the Gram matrix of the two
fused views is shared by L and every L_i, and the row/column log-sum-exps of each block are combined with
``logaddexp`` instead of materializing the 2N × 2N logits of every term.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mmib.objectives.base import LossOutput, Temperature, l2_normalize
from mmib.objectives.ntxent import nt_xent

COMM_TERMS = ("all", "full", "unimodal")


def _check_pair(name: str, pair: Sequence[torch.Tensor], shape: torch.Size | None) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ValueError(f"CoMMLoss: '{name}' must be a pair (view 1, view 2) of (N, d) tensors")
    a, b = pair
    for t in (a, b):
        if not isinstance(t, torch.Tensor) or t.dim() != 2:
            raise ValueError(f"CoMMLoss: '{name}' embeddings must be 2-D tensors (N, d)")
    if a.shape != b.shape or (shape is not None and a.shape != shape):
        raise ValueError(f"CoMMLoss: '{name}' embeddings have shapes {tuple(a.shape)}, {tuple(b.shape)}; every "
                         f"embedding must have the shape {tuple(shape or a.shape)}")
    return a, b


class CoMMLoss(nn.Module):
    """CoMM's objective L + Σ_i L_i for any number of modalities M >= 1 (unimodal terms).

    Args:
        temperature: fixed τ > 0 of every NT-Xent (CoMM code: 0.1).
        terms: ``"all"`` (L + Σ L_i), ``"full"`` (L only) or ``"unimodal"`` (Σ L_i only) — the paper's Fig. 5 /
            Table 6 ablations.
        reduction: ``"sum"`` over the included terms (paper Eq. 7) or ``"mean"`` (the code).
        gather_distributed: negatives from every process (uses the per-term path).

    ``forward(full, unimodal)``: ``full`` = (Z', Z''), ``unimodal`` = {modality: (Z'_i, Z''_i)}; all (N, d).
    Returns the loss and the terms ``L_full`` and ``L_<modality>`` (detached).

    Raises:
        ValueError: bad temperature / option, or embeddings of different shapes, or N < 2.

    Example:
        >>> _ = torch.manual_seed(0)
        >>> loss_fn = CoMMLoss(temperature=0.1)
        >>> full = (torch.randn(8, 16), torch.randn(8, 16))  # Z', Z'': two augmented views, all modalities fused
        >>> unimodal = {m: (torch.randn(8, 16), torch.randn(8, 16)) for m in ("a", "b")}  # (Z'_i, Z''_i)
        >>> out = loss_fn(full, unimodal)
        >>> out.loss.shape, sorted(out.terms)
        (torch.Size([]), ['L_a', 'L_b', 'L_full'])
        >>> bool(torch.isclose(out.loss, sum(out.terms.values())))  # reduction="sum": L + L_a + L_b
        True
    """

    def __init__(self, temperature: float = 0.1, terms: str = "all", reduction: str = "sum",
                 gather_distributed: bool = False) -> None:
        super().__init__()
        if terms not in COMM_TERMS:
            raise ValueError(f"CoMMLoss: terms must be one of {', '.join(COMM_TERMS)}, got {terms!r}")
        if reduction not in ("sum", "mean"):
            raise ValueError(f"CoMMLoss: reduction must be 'sum' or 'mean', got {reduction!r}")
        self.temperature = Temperature(temperature, learnable=False)
        self.terms, self.reduction = terms, reduction
        self.gather_distributed = bool(gather_distributed)

    def _validate(self, full, unimodal):
        f1, f2 = _check_pair("full", full, None)
        if f1.shape[0] < 2:
            raise ValueError("CoMMLoss: needs at least 2 samples")
        uni = {str(m): _check_pair(str(m), p, f1.shape) for m, p in (unimodal or {}).items()}
        if self.terms != "full" and not uni:
            raise ValueError("CoMMLoss: the unimodal terms need at least one modality's (Z'_i, Z''_i)")
        return f1, f2, uni

    def _reduce(self, terms: dict[str, torch.Tensor]) -> LossOutput:
        use = [k for k in terms if self.terms == "all" or (self.terms == "full") == (k == "L_full")]
        total = torch.stack([terms[k] for k in use]).sum()
        if self.reduction == "mean":
            total = total / len(use)
        return LossOutput(total, {k: v.detach() for k, v in terms.items()})

    def reference(self, full: Sequence[torch.Tensor], unimodal: Mapping[str, Sequence[torch.Tensor]]) -> LossOutput:
        """Per-term computation with one NT-Xent call each (also the distributed path)."""
        f1, f2, uni = self._validate(full, unimodal)
        s = self.temperature.scale()
        g = self.gather_distributed
        terms: dict[str, torch.Tensor] = {}
        if self.terms != "unimodal":
            terms["L_full"] = nt_xent(f1, f2, s, gather_distributed=g)
        if self.terms != "full":
            for m, (u1, u2) in uni.items():
                terms[f"L_{m}"] = 0.5 * (nt_xent(u1, f2, s, gather_distributed=g) + nt_xent(u2, f1, s, gather_distributed=g))
        return self._reduce(terms)

    def forward(self, full: Sequence[torch.Tensor], unimodal: Mapping[str, Sequence[torch.Tensor]] | None = None) -> LossOutput:
        if self.gather_distributed:
            from mmib.utils.dist import is_dist

            if is_dist():
                return self.reference(full, unimodal or {})
        f1, f2, uni = self._validate(full, unimodal)
        n = f1.shape[0]
        s = self.temperature.scale()
        f1, f2 = l2_normalize(f1), l2_normalize(f2)
        eye = torch.eye(n, dtype=torch.bool, device=f1.device)
        ninf = torch.tensor(float("-inf"), dtype=f1.dtype, device=f1.device)
        fv = torch.stack([f1, f2])  # (2, N, d)
        self_f = s * torch.bmm(fv, fv.transpose(1, 2))  # (2, N, N): f1·f1, f2·f2
        self_lse = torch.where(eye, ninf, self_f).logsumexp(-1)  # (2, N)
        terms: dict[str, torch.Tensor] = {}
        if self.terms != "unimodal":
            c12 = s * (f1 @ f2.T)
            pos = c12.diagonal()
            lse1 = torch.logaddexp(self_lse[0], c12.logsumexp(1))  # anchors f1: [f1f1\i, f1f2]
            lse2 = torch.logaddexp(c12.logsumexp(0), self_lse[1])  # anchors f2: [f2f1, f2f2\i]
            terms["L_full"] = 0.5 * ((lse1 - pos).mean() + (lse2 - pos).mean())
        if self.terms != "full":
            names = list(uni)
            u = torch.stack([torch.stack([l2_normalize(a), l2_normalize(b)]) for a, b in (uni[m] for m in names)])
            # u: (M, 2, N, d); view 1 of modality i pairs with full view 2 and vice versa
            fswap = fv.flip(0)
            mm, n_, d_ = u.shape[0], u.shape[2], u.shape[3]
            cross = s * torch.matmul(u, fswap.transpose(1, 2)[None])  # (M, 2, N, N): u_v · f_{other}
            uf = u.reshape(mm * 2, n_, d_)
            selfu = (s * torch.bmm(uf, uf.transpose(1, 2))).reshape(mm, 2, n_, n_)
            lse_u = torch.logaddexp(torch.where(eye, ninf, selfu).logsumexp(-1), cross.logsumexp(-1))  # (M, 2, N)
            lse_f = torch.logaddexp(cross.logsumexp(-2), self_lse.flip(0)[None])  # anchors f_other: (M, 2, N)
            pos = cross.diagonal(dim1=-2, dim2=-1)  # (M, 2, N)
            per = 0.5 * ((lse_u - pos).mean(-1) + (lse_f - pos).mean(-1))  # (M, 2): NT-Xent per (modality, view)
            li = per.mean(-1)  # ½ [NT(u', f'') + NT(u'', f')]
            for k, m in enumerate(names):
                terms[f"L_{m}"] = li[k]
        return self._reduce(terms)
