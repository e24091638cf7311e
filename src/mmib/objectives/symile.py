"""Symile (Saporta et al., "Contrasting with Symile: Simple Model-Agnostic Representation Learning for Unlimited
Modalities", NeurIPS 2024), for any M ≥ 2.

The score of a tuple is the multilinear inner product MIP(z^(1), …, z^(M)) = Σ_k Π_m z_k^(m) (Symile Eq. 2). For
every anchor modality m, row n is contrasted against candidate tuples of the other modalities; the loss is the mean
over anchors of the cross-entropy of ``logit_scale · MIP`` with the true tuple as the positive (Symile Eq. 4, peer
code ``rajesh-lab/symile``). Negatives:

- ``"n"`` (O(N)): for each non-anchor modality an independent row permutation is drawn; the negatives of row n are
  the elementwise products of the permuted non-anchor rows, and the positive (all rows n) overwrites column n.
  The permutations come from this module's own ``torch.Generator`` seeded with ``seed`` (the peer uses the global
  RNG); they are drawn anchor by anchor (in modality order), and within an anchor one per non-anchor modality in
  modality order, with ``torch.randperm(N_candidates, generator=…)``.
- ``"n_squared"``: all N^(M−1) combinations of non-anchor rows (memory N^(M−1)·d; meant for M = 3). The positive is
  the combination (n, n, …, n). Identical embeddings give (M−1)·ln N per anchor.

**Scale** ([decision], docs/methods/symile.md). The MIP of M unit vectors in R^d is at most 1 (one shared one-hot
direction) but only d^(1−M/2) for an aligned *dense* tuple (|z_k| = 1/√d, positive products), and a random tuple's
MIP has std d^((1−M)/2): with a CLIP temperature the logits of L2-normalized Symile embeddings are √d^(M−2) times
smaller than CLIP's and the network can only sharpen them by collapsing onto a few coordinates. With
``mip_scale="dense"`` (default) the MIP is multiplied by d^(M/2−1) (each unit vector by d^(1/2−1/M)), so an aligned
dense tuple scores 1 and a random one has std 1/√d — a cosine's numbers for every d and M, and one temperature
(0.07) serves all of them. ``"none"`` is the raw MIP (the peer's L2-normalized synthetic experiments).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from mmib.objectives.base import (
    LossOutput,
    Temperature,
    check_embeddings,
    check_queries,
    contrastive_ce,
    gather_candidates,
    l2_normalize,
)


def mip(zs: Sequence[torch.Tensor]) -> torch.Tensor:
    """Multilinear inner product of aligned rows: Σ_k Π_m z_k^(m) → (N,)."""
    out = zs[0]
    for z in zs[1:]:
        out = out * z
    return out.sum(-1)


MIP_SCALES = ("dense", "none")


def dense_mip_factor(d: int, m: int) -> float:
    """d^(M/2 − 1): the MIP of an aligned dense tuple of M unit vectors in R^d times this factor is 1."""
    return float(d) ** (m / 2.0 - 1.0)


def mip_score(queries: Sequence[torch.Tensor], candidates: torch.Tensor) -> torch.Tensor:
    """MIP of each candidate (Nc, d) with the elementwise product of each query tuple (k tensors (Nq, d)) → (Nq, Nc)."""
    prod = queries[0]
    for q in queries[1:]:
        prod = prod * q
    return prod @ candidates.T


class SymileLoss(nn.Module):
    """Symile loss (Saporta et al., NeurIPS 2024, Eqs. 2–4) for any M ≥ 2.

    Args:
        temperature: τ > 0; logits are factor · MIP / τ (the peer's ``logit_scale`` = 1/τ; factor: ``mip_scale``).
        learn_temperature: learn the logit scale as exp(parameter), as the peer does (default True).
        min_temperature: floor of a learned τ (default ``min(1e-3, temperature)``; any value in (0, temperature]).
        negatives: ``"n"`` (O(N) sampled negatives) or ``"n_squared"`` (all N^(M−1) combinations).
        seed: seed of the generator that draws the O(N) permutations (caller-controlled; see :meth:`reseed`).
        normalize: L2-normalize the embeddings first (the peer's small experiments; its large ones use LayerNorm
            upstream and no normalization here).
        mip_scale: ``"dense"`` (default): multiply the MIP by d^(M/2−1) so that an aligned dense tuple of unit
            vectors scores 1 (see the module doc); ``"none"``: the raw MIP. ``"dense"`` needs ``normalize=True``.
        positive_in_denominator: standard InfoNCE (True) or the decoupled form (the positive excluded).
        gather_distributed: candidates from all processes (with gradients); a no-op without a process group.
        max_candidates: safety limit on N^(M−1) for ``"n_squared"`` (a clear error instead of running out of memory).

    Raises:
        ValueError: on a non-positive temperature or an unknown ``negatives`` mode; at call time when
            ``"n_squared"`` would need more than ``max_candidates`` candidate tuples.

    Example:
        >>> loss_fn = SymileLoss(negatives="n", seed=0)
        >>> out = loss_fn({k: torch.randn(8, 16) for k in ("a", "b", "c")})
        >>> out.loss.shape
        torch.Size([])
    """

    def __init__(
        self,
        temperature: float = 0.07,
        learn_temperature: bool = True,
        negatives: str = "n",
        seed: int = 0,
        normalize: bool = True,
        positive_in_denominator: bool = True,
        gather_distributed: bool = False,
        max_candidates: int = 2**22,
        min_temperature: float | None = None,
        mip_scale: str = "dense",
    ) -> None:
        super().__init__()
        if mip_scale not in MIP_SCALES:
            raise ValueError(f"mip_scale must be one of {MIP_SCALES}, got {mip_scale!r}")
        if mip_scale == "dense" and not normalize:
            raise ValueError("mip_scale='dense' is defined for L2-normalized embeddings; use normalize=True or "
                             "mip_scale='none'")
        if negatives not in ("n", "n_squared"):
            raise ValueError(f"negatives must be 'n' (O(N)) or 'n_squared' (O(N^2)), got {negatives!r}")
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"seed must be an int, got {seed!r}")
        if not isinstance(max_candidates, int) or max_candidates < 1:
            raise ValueError(f"max_candidates must be a positive int, got {max_candidates!r}")
        self.temperature = Temperature(temperature, learnable=learn_temperature, min_temperature=min_temperature)
        self.negatives = negatives
        self.seed = seed
        self.normalize = bool(normalize)
        self.mip_scale = mip_scale
        self.positive_in_denominator = bool(positive_in_denominator)
        self.gather_distributed = bool(gather_distributed)
        self.max_candidates = max_candidates
        self.generator = torch.Generator().manual_seed(seed)

    def reseed(self, seed: int) -> None:
        """Restart the permutation generator from ``seed``."""
        self.seed = int(seed)
        self.generator.manual_seed(self.seed)

    def _prep(self, z: torch.Tensor) -> torch.Tensor:
        return l2_normalize(z) if self.normalize else z

    def mip_factor(self, d: int, m: int) -> float:
        """The factor applied to the MIP of M vectors in R^d (1 with ``mip_scale="none"``)."""
        return dense_mip_factor(d, m) if self.mip_scale == "dense" else 1.0

    def forward(self, embeddings: Mapping[str, torch.Tensor] | Sequence[torch.Tensor]) -> LossOutput:
        keys, zs = check_embeddings(embeddings, 2, "SymileLoss")
        zs = [self._prep(z) for z in zs]
        m = len(zs)
        cands, targets = gather_candidates(zs, self.gather_distributed)
        n_all = cands[0].shape[0]
        if self.negatives == "n_squared" and n_all ** (m - 1) > self.max_candidates:
            raise ValueError(
                f"SymileLoss(negatives='n_squared'): {n_all}^{m - 1} candidate tuples exceed max_candidates="
                f"{self.max_candidates}; use negatives='n' or a smaller batch"
            )
        scale = self.temperature.scale() * self.mip_factor(zs[0].shape[1], m)
        terms: dict[str, torch.Tensor] = {}
        losses = []
        for a in range(m):
            others = [b for b in range(m) if b != a]
            if self.negatives == "n":
                logits, tgt = self._logits_n(zs, cands, a, others, targets)
            else:
                logits, tgt = self._logits_n_squared(zs, cands, a, others, targets)
            la = contrastive_ce(scale * logits, self.positive_in_denominator, targets=tgt)
            terms[f"symile_{keys[a]}"] = la.detach()
            losses.append(la)
        loss = torch.stack(losses).mean()
        terms["temperature"] = (1.0 / self.temperature.scale()).detach()
        return LossOutput(loss, terms)

    def _logits_n(self, zs, cands, a, others, targets):
        n_all = cands[0].shape[0]
        prod = None
        for b in others:
            perm = torch.randperm(n_all, generator=self.generator).to(cands[b].device)
            zb = cands[b][perm]
            prod = zb if prod is None else prod * zb
        logits = zs[a] @ prod.T  # (n_local, n_all)
        pos = mip([zs[a]] + [cands[b][targets] for b in others])
        onehot = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, targets[:, None], True)
        return torch.where(onehot, pos[:, None], logits), targets

    def _logits_n_squared(self, zs, cands, a, others, targets):
        n_all = cands[0].shape[0]
        k = len(others)
        # T[n, j1, …, j_{k−1}, :] = z_n^(a) ⊙ z_{j1}^(o1) ⊙ …; the last factor is contracted by a matmul
        t = zs[a]
        for b in others[:-1]:
            t = t.unsqueeze(-2) * cands[b].reshape((1,) * (t.dim() - 1) + cands[b].shape)
        logits = (t.reshape(-1, t.shape[-1]) @ cands[others[-1]].T).reshape(zs[a].shape[0], -1)
        # flat index of (n, n, …, n) in row-major order over k axes of size n_all
        stride = sum(n_all**i for i in range(k))
        return logits, targets * stride

    def score(
        self, queries: Mapping[str, torch.Tensor] | Sequence[torch.Tensor], candidates: torch.Tensor
    ) -> torch.Tensor:
        """Retrieval score (Nq, Nc): MIP of the candidate with the product of the query modalities (Symile §3), times
        the same factor as in training (:meth:`mip_factor`; it does not change the ranking)."""
        _, qs = check_queries(queries, candidates, "SymileLoss.score")
        factor = self.mip_factor(candidates.shape[1], len(qs) + 1)
        return factor * mip_score([self._prep(q) for q in qs], self._prep(candidates))
