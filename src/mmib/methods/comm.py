"""CoMM — Contrastive MultiModal learning (Dufumier, Castillo-Navarro, Tuia, Thiran, "What to align in multimodal
contrastive learning?", ICLR 2025; spec part B), for any M >= 2 modalities.

Architecture (§3.2, App. B.3): per-modality encoder → tokens (:class:`~mmib.nn.fusion_transformer.TokenEncoder`)
→ fusion Transformer with [CLS] over the tokens of the modalities present (1 layer, 8 heads by default) → Z; a
3-layer projection MLP (512 hidden, 256 out; Linear-BatchNorm-ReLU blocks as in the authors' code,
``pl_modules/comm.py:_build_mlp``; ``head_norm: none`` drops the BatchNorm) maps Z to the space of the loss. Z_i = the same network with every
modality but i dropped ("masks that drop a modality's tokens"), so Z_i is exactly invariant to the other modalities.

Training (Eq. 7, App. D, authors' code): two augmented views X', X'' of all modalities, loss L + Σ_i L_i with SimCLR's
NT-Xent (2N − 1 candidates, τ = 0.1 fixed); ``terms: full`` / ``unimodal`` give the L-only / Σ L_i-only ablations.
Sequence padding masks are applied in training as well as at inference.

Interface: ``embed`` → Z_i per modality (``space="embedding"``: its projection); ``fuse`` → Z of the given modalities
(absent ones dropped; samples whose modality is missing, by the presence mask, have that modality's tokens masked);
``components`` → ``Z`` and ``Z_<modality>``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from mmib.data.dataset import Batch
from mmib.data.spec import DatasetSpec
from mmib.errors import MMIBError
from mmib.methods.base import SPACES
from mmib.methods.contrastive_baselines import AugmentedMethod, AugmentedOptions
from mmib.methods.options import OptimOptions, optim_field
from mmib.methods.registry import register_method
from mmib.nn.fusion_transformer import FusionTransformer, TokenEncoder
from mmib.nn.heads import ProjectionHead
from mmib.objectives.comm import CoMMLoss

UNIMODAL_VIEWS = ("augmented", "clean")
HEAD_NORMS = ("batch", "none")


@dataclass(frozen=True)
class CoMMFusionOptions:
    """``method.fusion``: the fusion Transformer."""

    n_heads: int = 8
    n_layers: int = 1
    dim_feedforward: int | None = None  # null: 4 * embed_dim
    dropout: float = 0.0
    modality_embedding: bool = True


@dataclass(frozen=True)
class CoMMObjectiveOptions:
    """``method.objective``: :class:`~mmib.objectives.comm.CoMMLoss`."""

    temperature: float = 0.1  # fixed (code)
    terms: str = "all"  # all (L + sum L_i) | full (L only) | unimodal (sum L_i only)
    reduction: str = "sum"  # sum (paper Eq. 7) | mean (code)
    gather_distributed: bool = False


@dataclass(frozen=True)
class CoMMOptions(AugmentedOptions):
    """``conf/method/comm.yaml``; ``docs/methods/comm.md`` explains each key."""

    embed_dim: int = 128  # token / fused representation size
    vector_tokens: int = 16  # vectors: number of feature tokens
    fusion: CoMMFusionOptions = field(default_factory=CoMMFusionOptions)
    projection_dim: int = 256
    head_layers: int = 3
    head_hidden: int = 512
    head_norm: str = "batch"  # batch | none
    objective: CoMMObjectiveOptions = field(default_factory=CoMMObjectiveOptions)
    unimodal_views: str = "augmented"  # augmented (code) | clean (paper Alg. 1)
    optim: OptimOptions = optim_field(name="adamw", lr=3.0e-4, weight_decay=1.0e-4)


@register_method("comm")
class CoMMMethod(AugmentedMethod):
    """CoMM: token encoders + fusion Transformer + projection head, trained with L + Σ_i L_i."""

    min_modalities = 2
    Options = CoMMOptions

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        o = self.opts
        d = o.embed_dim
        self.tokenizers = nn.ModuleDict({
            ms.name: TokenEncoder(ms, d, self.encoder_cfg, o.vector_tokens) for ms in spec.modalities})
        f = o.fusion
        self.fusion = FusionTransformer(spec.modality_names, d, n_heads=f.n_heads, n_layers=f.n_layers,
                                        dim_feedforward=f.dim_feedforward, dropout=f.dropout,
                                        modality_embedding=f.modality_embedding)
        head_norm = o.head_norm
        if head_norm not in HEAD_NORMS:
            raise MMIBError(f"method 'comm': head_norm must be one of {', '.join(map(str, HEAD_NORMS))}, got "
                            f"{head_norm!r}")
        self.head = ProjectionHead(d, o.projection_dim, o.head_layers, hidden_dim=o.head_hidden,
                                   norm=None if head_norm == "none" else head_norm)
        ob = o.objective
        self.objective = CoMMLoss(temperature=ob.temperature, terms=ob.terms, reduction=ob.reduction,
                                  gather_distributed=ob.gather_distributed)
        self.unimodal_views = o.unimodal_views
        if self.unimodal_views not in UNIMODAL_VIEWS:
            raise MMIBError(f"method 'comm': unimodal_views must be one of {', '.join(UNIMODAL_VIEWS)}, got "
                            f"{self.unimodal_views!r}")

    # ------------------------------------------------------------------ tokens and fusion
    def tokens(self, x: Mapping[str, torch.Tensor], batch: Batch, mods: Sequence[str]):
        """Tokens and padding masks of the given modalities (presence mask folded into the padding)."""
        toks, pads = {}, {}
        for m in mods:
            t, p = self.tokenizers[m](x[m], self.lengths_of(batch, m))
            present = (batch.get("mask") or {}).get(m)
            if present is not None and not bool(present.all()):
                absent = ~present.to(t.device)[:, None].expand(t.shape[0], t.shape[1])
                p = absent if p is None else (p | absent)
            toks[m], pads[m] = t, p
        return toks, pads

    def fused(self, x: Mapping[str, torch.Tensor], batch: Batch, mods: Sequence[str]) -> torch.Tensor:
        toks, pads = self.tokens(x, batch, mods)
        return self.fusion(toks, pads, mods)

    # ------------------------------------------------------------------ training
    def loss(self, batch: Batch):
        mods = self.modalities_of(batch, self.spec.modality_names)
        batch = self.complete_rows(batch, mods)
        views = [self.augment(batch, mods), self.augment(batch, mods)]
        full, uni_views = [], []
        need_uni = self.objective.terms != "full"
        for x in views:
            toks, pads = self.tokens(x, batch, mods)
            full.append(self.head(self.fusion(toks, pads, mods)))
            if need_uni and self.unimodal_views == "augmented":
                uni_views.append({m: self.head(self.fusion(toks, pads, [m])) for m in mods})
        unimodal: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        if need_uni:
            if self.unimodal_views == "augmented":  # the code: Z'_i, Z''_i from the augmented views
                unimodal = {m: (uni_views[0][m], uni_views[1][m]) for m in mods}
            else:  # the paper (Algorithm 1): Z_i from the unaugmented input, paired with both Z' and Z''
                toks, pads = self.tokens(batch["x"], batch, mods)
                for m in mods:
                    z = self.head(self.fusion(toks, pads, [m]))
                    unimodal[m] = (z, z)
        return self.objective((full[0], full[1]), unimodal)

    # ------------------------------------------------------------------ interface
    def embed(self, batch: Batch, modalities: Sequence[str] | None = None, space: str = "representation") -> dict[str, torch.Tensor]:
        if space not in SPACES:
            raise MMIBError(f"unknown representation space '{space}'; valid: {', '.join(SPACES)}")
        mods = self.modalities_of(batch, modalities)
        toks, pads = self.tokens(batch["x"], batch, mods)
        z = {m: self.fusion(toks, pads, [m]) for m in mods}
        return z if space == "representation" else {m: self.head(v) for m, v in z.items()}

    def fuse(self, batch: Batch, modalities: Sequence[str] | None = None) -> torch.Tensor:
        mods = self.modalities_of(batch, modalities)
        return self.fused(batch["x"], batch, mods)

    def components(self, batch: Batch, modalities: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        mods = self.modalities_of(batch, modalities)
        toks, pads = self.tokens(batch["x"], batch, mods)
        out = {"Z": self.fusion(toks, pads, mods)}
        out.update({f"Z_{m}": self.fusion(toks, pads, [m]) for m in mods})
        return out
