"""IBMA — Information Bottleneck-based Multi-modal Alignment (Wang et al.; spec ``specs/ibma.md``).

Model: per-modality encoders Z^(j) = f^(j)(X^(j)), a one-block Transformer fusion over the modality tokens
(Z = F(Z^(1), …)), a linear head per modality and one on Z. Loss (eq. 2):

    L_b = CE^(1) + … + CE^(M) + CE^(fuse) + η ( Σ_{j≠k} IBB^(j|k) + IBB^(fuse) )

with IBB on soft class-centroid assignments (:mod:`mmib.objectives.ibma`). Non-trainable state (Alg. 1): class
frequencies p and input centroids C^(j) (once, from the training split), feature centroids F^(j), fused centroids F
(initialised by one no-grad forward pass) and the variational tables Q^(j), Q_f (uniform 1/C at first). At the end
of every epoch Q is rebuilt from the assignments of that epoch's training passes (Algorithms 3, 4) and then the
centroids are recomputed (Alg. 1 lines 15–19). The "true" plug-in IB quantities (§3.2) are computed from the same
epoch cache and logged (``train/plugin/*``) with the epoch's IBB, so that ``IB ≤ IBB`` can be checked.

The compression part U of every IBB term has **no gradient** (it equals KL(β_i || p), independent of the network;
spec §3.3): it is implemented literally and logged (``ibb_U_*``) but only the alignment terms V train the model.

``bound: club`` is the IB-bound swap of Table 6: the compression upper bounds are replaced by vCLUB (Cheng et al.
2020; IBMA App. Alg. 2) with a Gaussian q_θ(Z|X) per term trained by maximum likelihood in alternation; the relevance
(alignment) terms stay IBMA's. ``modality_alignment: false`` is the "w/o MSRA" ablation. ``fusion.kind: concat``
replaces the Transformer fusion by ``Linear(concat(Z^(1), …))`` with the same loss (ours: it separates the loss from
the fusion block in the comparison with the concat baseline).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mmib.data.dataset import Batch
from mmib.data.spec import DatasetSpec
from mmib.errors import MMIBError
from mmib.methods.fusion import SupervisedFusionMethod, _slice_batch
from mmib.methods.fusion_options import SupervisedFusionOptions
from mmib.methods.options import OptimOptions, optim_field
from mmib.methods.registry import register_method
from mmib.nn.fusion import ConcatFusion, TokenTransformerFusion
from mmib.objectives.base import LossOutput
from mmib.objectives.ibma import (
    IBBLoss,
    alignment_term,
    class_means,
    fused_alignment_term,
    plugin_ib,
    soft_assign,
    update_q,
)

BOUNDS = ("ibb", "club")
FUSIONS = ("transformer", "concat")


@dataclass(frozen=True)
class IBMAFusionOptions:
    """``method.fusion``: the one-block Transformer over the modality tokens (B.2), or ``kind: concat``."""

    heads: int = 8
    ffn: int = 2048
    dropout: float = 0.1
    # not in the packaged YAML, so that the suites' `+method.fusion.kind=concat` keeps adding it
    kind: str = field(default="transformer", metadata={"yaml_optional": True})


@dataclass(frozen=True)
class IBMAOptions(SupervisedFusionOptions):
    """``conf/method/ibma.yaml``; ``docs/methods/ibma.md`` explains each key."""

    representation_dim: int = 512  # B.2: 512-d encoders and fused representation
    head_hidden: list[int] = field(default_factory=list)  # linear heads
    # not in ibma.yaml (a new key there would change the fingerprint of every archived ibma run)
    head_act: str = field(default="relu", metadata={"yaml_optional": True})
    eta: float = 0.5
    temperature: float = 1.0
    normalize: bool = False
    modality_alignment: bool = True  # false: the "w/o MSRA" ablation
    q_eps: float = 1.0e-8
    refresh_order: str = "q_then_centroids"  # paper order | centroids_then_q
    bound: str = "ibb"  # ibb | club (vCLUB compression bounds)
    club_hidden: int = 256
    club_steps: int = 1
    club_lr: float = 1.0e-3
    fusion: IBMAFusionOptions = field(default_factory=IBMAFusionOptions)
    optim: OptimOptions = optim_field(name="adam", lr=1.0e-4, weight_decay=1.0e-5)


def input_features(x: torch.Tensor, kind: str, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """The fixed (non-learned) vector X^(j) of a sample used for input centroids (spec A6 [RECOMMEND]): the flattened
    input; for sequences the mean over the valid time steps."""
    if kind == "sequence":
        if lengths is None:
            return x.mean(1)
        keep = (torch.arange(x.shape[1], device=x.device)[None, :] < lengths.to(x.device)[:, None]).to(x.dtype)
        return (x * keep[..., None]).sum(1) / keep.sum(1, keepdim=True).clamp_min(1)
    return x.reshape(x.shape[0], -1)


@register_method("ibma")
class IBMAMethod(SupervisedFusionMethod):
    """IBMA; see the module docstring and ``docs/methods/ibma.md``."""

    name = "ibma"
    min_modalities = 2
    Options = IBMAOptions

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        if self.task != "classification":
            raise MMIBError(f"method '{self.name}': IBB is defined on class centroids and needs a classification data "
                            f"set; '{spec.name}' is {spec.task} (for CMU-MOSI round the labels to 7 classes, A10)")
        o = self.opts
        self.n_classes = int(spec.n_classes)
        self.bound = o.bound
        if self.bound not in BOUNDS:
            raise MMIBError(f"method.bound must be one of {', '.join(BOUNDS)}, got {self.bound!r}")
        self.objective = IBBLoss(o.eta, o.temperature, o.normalize, o.modality_alignment, o.q_eps)
        fc = o.fusion
        self.fusion_kind = fc.kind
        if self.fusion_kind not in FUSIONS:
            raise MMIBError(f"method.fusion.kind must be one of {', '.join(FUSIONS)}, got {self.fusion_kind!r}")
        if self.fusion_kind == "transformer":
            self.fusion = TokenTransformerFusion(self.rep_dim, self.n_mod, self.rep_dim, fc.heads, fc.ffn, fc.dropout)
        else:  # Linear(concat(Z^(1), …)) → rep_dim: the same loss without the Transformer (a zero vector for a missing
            # modality, as in the concat baseline)
            self.fusion = ConcatFusion([self.rep_dim] * self.n_mod, self.rep_dim)
        self.heads = nn.ModuleDict({m: self.make_head(self.rep_dim) for m in self.mods})
        self.fused_head = self.make_head(self.rep_dim)
        C = self.n_classes
        self.input_dims = {}
        for ms in spec.modalities:
            if ms.kind == "sequence":
                dx = int(ms.shape[1])
            else:
                if any(s is None for s in ms.shape):
                    raise MMIBError(f"method '{self.name}': modality '{ms.name}' has a variable shape {ms.shape}")
                dx = int(math.prod(ms.shape))
            self.input_dims[ms.name] = dx
        for i, m in enumerate(self.mods):
            self.register_buffer(f"input_centroids_{i}", torch.zeros(C, self.input_dims[m]))
            self.register_buffer(f"feature_centroids_{i}", torch.zeros(C, self.rep_dim))
            self.register_buffer(f"q_{i}", torch.full((C, C), 1.0 / C))
        self.register_buffer("fused_centroids", torch.zeros(C, self.rep_dim))
        self.register_buffer("q_fused", torch.full((C, C), 1.0 / C))
        self.register_buffer("prior", torch.full((C,), 1.0 / C))
        self.register_buffer("ibma_ready", torch.tensor(False))
        self.refresh_order = o.refresh_order
        if self.refresh_order not in ("q_then_centroids", "centroids_then_q"):
            raise MMIBError("method.refresh_order must be 'q_then_centroids' (paper) or 'centroids_then_q'")
        if self.bound == "club":
            from mmib.info import CLUBEstimator

            self.automatic_optimization = False
            h = o.club_hidden
            self.club_steps = o.club_steps
            self.club = nn.ModuleDict()
            for m in self.mods:
                self.club[f"{m}"] = CLUBEstimator(self.input_dims[m], self.rep_dim, hidden_dim=h)
                self.club[f"fuse_{m}"] = CLUBEstimator(self.input_dims[m], self.rep_dim, hidden_dim=h)
        self._cache: dict[str, list[torch.Tensor]] = {}
        #: per-epoch plug-in IB quantities and IBB parts (monitoring; Table 5)
        self.ibma_history: list[dict[str, float]] = []

    # ------------------------------------------------------------------ buffers
    def input_centroids(self, i: int) -> torch.Tensor:
        return getattr(self, f"input_centroids_{i}")

    def feature_centroids(self, i: int) -> torch.Tensor:
        return getattr(self, f"feature_centroids_{i}")

    def q(self, i: int) -> torch.Tensor:
        return getattr(self, f"q_{i}")

    def inputs(self, batch: Batch, mods: Sequence[str]) -> dict[str, torch.Tensor]:
        return {m: input_features(batch["x"][m], self.spec.modality(m).kind, self.lengths_of(batch, m)) for m in mods}

    @torch.no_grad()
    def initialize_state(self, train_batch: Batch, chunk: int = 4096) -> None:
        """Alg. 1 lines 2–8: p, input centroids C^(j), Q = 1/C, and F^(j), F from one no-grad forward pass."""
        y = train_batch["y"].to(self.device)
        C = self.n_classes
        counts = torch.bincount(y, minlength=C).float()
        missing = [int(c) for c in torch.nonzero(counts == 0).flatten()]
        if missing:
            # p_y = 0 makes the compression term U (eq. 3: log φ − log p_y − …) infinite for that class
            raise MMIBError(f"method '{self.name}': class(es) {missing} of {C} have no training samples; IBMA's "
                            "class prior p_y (Alg. 1) needs every class in the train split (check n_classes and "
                            "the split, or stratify it)")
        self.prior.copy_(counts / counts.sum())
        was = self.training
        self.eval()
        n = y.shape[0]
        xs: dict[str, list[torch.Tensor]] = {m: [] for m in self.mods}
        zs: dict[str, list[torch.Tensor]] = {m: [] for m in self.mods}
        fs: list[torch.Tensor] = []
        for s in range(0, n, chunk):
            sub = _slice_batch(train_batch, slice(s, s + chunk), self.device)
            for m, v in self.inputs(sub, self.mods).items():
                xs[m].append(v)
            z = self.encode(sub, self.mods)
            for m in self.mods:
                zs[m].append(z[m])
            fs.append(self.fusion([z[m] for m in self.mods]))
        for i, m in enumerate(self.mods):
            self.input_centroids(i).copy_(class_means(torch.cat(xs[m]), y, C))
            self.feature_centroids(i).copy_(class_means(torch.cat(zs[m]), y, C))
            self.q(i).fill_(1.0 / C)
        self.fused_centroids.copy_(class_means(torch.cat(fs), y, C))
        self.q_fused.fill_(1.0 / C)
        self.ibma_ready.fill_(True)
        self.train(was)

    def on_fit_start(self) -> None:
        if not bool(self.ibma_ready):
            dm = getattr(self.trainer, "datamodule", None)
            if dm is None or not hasattr(dm, "split_batch"):
                raise MMIBError(f"method '{self.name}' needs an mmib data module (centroids use the training split)")
            self.initialize_state(dm.split_batch("train"))

    def on_train_epoch_start(self) -> None:
        self._cache = {}

    # ------------------------------------------------------------------ forward
    def forward_all(self, batch: Batch, mods: Sequence[str]) -> dict[str, Any]:
        z = self.encode(batch, mods)
        fused = self.fusion([z.get(m) for m in self.mods])
        return {"z": z, "fused": fused}

    def loss(self, batch: Batch) -> LossOutput:
        if not bool(self.ibma_ready):
            raise MMIBError(f"method '{self.name}': initialize_state() (centroids, p, Q) must run before training")
        self.modalities_of(batch, self.mods)
        batch = self.complete_rows(batch)
        y = batch["y"]
        o = self.forward_all(batch, self.mods)
        z, fused = o["z"], o["fused"]
        terms: dict[str, torch.Tensor] = {}
        ce = F.cross_entropy(self.fused_head(fused), y)
        terms["ce_fuse"] = ce.detach()
        for m in self.mods:
            t = F.cross_entropy(self.heads[m](z[m]), y)
            terms[f"ce_{m}"] = t.detach()
            ce = ce + t
        reps = [z[m] for m in self.mods]
        x = self.inputs(batch, self.mods)
        xin = [x[m] for m in self.mods]
        fc = [self.feature_centroids(i) for i in range(self.n_mod)]
        ic = [self.input_centroids(i) for i in range(self.n_mod)]
        qs = [self.q(i) for i in range(self.n_mod)]
        if self.bound == "ibb":
            ib = self.objective(reps, fused, xin, y, fc, self.fused_centroids, ic, self.prior, qs, self.q_fused)
        else:
            ib = self.club_bound(reps, fused, xin, y, fc, qs)
        terms.update(ib.terms)
        if self.training and torch.is_grad_enabled():
            self._cache.setdefault("y", []).append(y.detach())
            self._cache.setdefault("fused", []).append(fused.detach())
            for i, m in enumerate(self.mods):
                self._cache.setdefault(f"z{i}", []).append(z[m].detach())
                self._cache.setdefault(f"x{i}", []).append(xin[i].detach())
        return LossOutput(ce + ib.loss, terms)

    def club_bound(self, reps, fused, xin, y, fc, qs) -> LossOutput:
        """Table 6's swap: vCLUB upper bounds of I(Z^(j); X^(j)) and I(Z; X^(j)) in place of U; IBMA's V terms kept."""
        obj = self.objective
        a = [obj.assign(z, c) for z, c in zip(reps, fc)]
        g, _ = obj.assign(fused, self.fused_centroids)
        terms: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=fused.device)
        for j, m in enumerate(self.mods):
            if obj.modality_alignment:
                u = self.club[m](xin[j], reps[j])
                for k in range(self.n_mod):
                    if k != j:
                        v = alignment_term(a[j][0], a[k][0], qs[j], obj.eps).mean()
                        total = total + u - v
                        terms[f"club_U_{j}_{k}"], terms[f"ibb_V_{j}_{k}"] = u.detach(), v.detach()
            uf = self.club[f"fuse_{m}"](xin[j], fused)
            total = total + uf
            terms[f"club_U_fuse_{j}"] = uf.detach()
        vf = fused_alignment_term(g, y, self.q_fused, obj.eps).mean()
        total = total - vf
        terms["ibb_V_fuse"] = vf.detach()
        terms["club_bound"] = total.detach()
        return LossOutput(obj.eta * total, terms)

    # ------------------------------------------------------------------ CLUB: alternating optimisation
    def configure_optimizers(self):
        if self.bound != "club":
            return super().configure_optimizers()
        lr, wd = self.opts.optim.lr, self.opts.optim.weight_decay
        club_ids = {id(p) for p in self.club.parameters()}
        main = [p for p in self.parameters() if id(p) not in club_ids]
        return [torch.optim.Adam(main, lr=lr, weight_decay=wd),
                torch.optim.Adam(self.club.parameters(), lr=self.opts.club_lr)]

    def training_step(self, batch: Batch, batch_idx: int):
        if self.bound != "club":
            return super().training_step(batch, batch_idx)
        opt_main, opt_club = self.optimizers()
        b = self.complete_rows(batch)
        with torch.no_grad():
            o = self.forward_all(b, self.mods)
            x = self.inputs(b, self.mods)
        for _ in range(self.club_steps):  # maximise log q_θ(Z|X) (CLUB Alg. 1 / IBMA App. Alg. 2)
            nll = sum(self.club[m].learning_loss(x[m], o["z"][m]) + self.club[f"fuse_{m}"].learning_loss(x[m], o["fused"])
                      for m in self.mods)
            opt_club.zero_grad()
            self.manual_backward(nll)
            opt_club.step()
        out = self.loss(batch)
        self.check_finite(out, "training")
        self._log_terms("train", out, int(b["y"].shape[0]))
        opt_main.zero_grad()
        self.manual_backward(out.loss)
        opt_main.step()
        opt_club.zero_grad()  # the main loss also reached q_θ: discard those gradients
        return out.loss.detach()

    # ------------------------------------------------------------------ per-epoch refresh (Alg. 1 lines 14-19)
    @torch.no_grad()
    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()
        if not self._cache:
            return
        stats = self.refresh(
            [torch.cat(self._cache[f"z{i}"]) for i in range(self.n_mod)], torch.cat(self._cache["fused"]),
            [torch.cat(self._cache[f"x{i}"]) for i in range(self.n_mod)], torch.cat(self._cache["y"]))
        self._cache = {}
        stats["epoch"] = float(self.current_epoch)
        self.ibma_history.append(stats)
        for k, v in stats.items():
            if k != "epoch":
                self.log(f"train/plugin/{k}", float(v), on_step=False, on_epoch=True, sync_dist=True)

    @torch.no_grad()
    def refresh(self, zs: Sequence[torch.Tensor], fused: torch.Tensor, xs: Sequence[torch.Tensor],
                y: torch.Tensor) -> dict[str, float]:
        """Plug-in IB and epoch IBB (with the Q and centroids used during the epoch), then Q (Algs. 3, 4) and the
        centroids. Returns the monitored values."""
        obj, C = self.objective, self.n_classes
        a = [soft_assign(z, self.feature_centroids(i), obj.temperature, obj.normalize)
             for i, z in enumerate(zs)]
        b = [soft_assign(x, self.input_centroids(i), obj.temperature, obj.normalize) for i, x in enumerate(xs)]
        g = soft_assign(fused, self.fused_centroids, obj.temperature, obj.normalize)
        stats = plugin_ib([t[0] for t in a], [t[0] for t in b], g[0], y, C)
        full = self.objective.__class__(1.0, obj.temperature, obj.normalize, True, obj.eps)(
            list(zs), fused, list(xs), y, [self.feature_centroids(i) for i in range(self.n_mod)],
            self.fused_centroids, [self.input_centroids(i) for i in range(self.n_mod)], self.prior,
            [self.q(i) for i in range(self.n_mod)], self.q_fused)
        for k, v in full.terms.items():
            stats[f"epoch_{k}"] = float(v)
        for j in range(self.n_mod):
            parts = [stats[f"epoch_ibb_U_{j}_{k}"] - stats[f"epoch_ibb_V_{j}_{k}"]
                     for k in range(self.n_mod) if k != j]
            stats[f"IBB_{j}"] = sum(parts) / len(parts)
        stats["IBB_fuse"] = stats["epoch_ibb_U_fuse"] - stats["epoch_ibb_V_fuse"]
        if self.refresh_order == "q_then_centroids":
            self._update_q(a, g, y)
            self._update_centroids(zs, fused, y)
        else:
            self._update_centroids(zs, fused, y)
            a = [soft_assign(z, self.feature_centroids(i), obj.temperature, obj.normalize) for i, z in enumerate(zs)]
            g = soft_assign(fused, self.fused_centroids, obj.temperature, obj.normalize)
            self._update_q(a, g, y)
        return stats

    def _update_q(self, a, g, y) -> None:
        for i in range(self.n_mod):
            self.q(i).copy_(update_q(a[i][0], y, self.n_classes, self.q(i)))
        self.q_fused.copy_(update_q(g[0], y, self.n_classes, self.q_fused))

    def _update_centroids(self, zs, fused, y) -> None:
        for i, z in enumerate(zs):
            self.feature_centroids(i).copy_(class_means(z, y, self.n_classes, self.feature_centroids(i)))
        self.fused_centroids.copy_(class_means(fused, y, self.n_classes, self.fused_centroids))

    # ------------------------------------------------------------------ the interface
    def fuse(self, batch: Batch, modalities: Sequence[str] | None = None) -> torch.Tensor:
        """Z = F(Z^(1), …) over the requested modalities (Transformer: missing tokens are dropped from the fusion block;
        concat: a missing modality enters as a zero vector)."""
        return self.forward_all(batch, self.modalities_of(batch, modalities))["fused"]

    def predict(self, batch: Batch, modalities: Sequence[str] | None = None) -> torch.Tensor:
        return self.fused_head(self.fuse(batch, modalities))

    def embed(self, batch: Batch, modalities: Sequence[str] | None = None, space: str = "representation") -> dict[str, torch.Tensor]:
        self._check_space(space)
        return self.encode(batch, self.modalities_of(batch, modalities))

    def components(self, batch: Batch, modalities: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Soft centroid assignments ``assign_<m>`` (α) and ``assign_fused`` (γ)."""
        mods = self.modalities_of(batch, modalities)
        o = self.forward_all(batch, mods)
        obj = self.objective
        out = {f"assign_{m}": soft_assign(o["z"][m], self.feature_centroids(self.mods.index(m)), obj.temperature,
                                          obj.normalize)[0] for m in mods}
        out["assign_fused"] = soft_assign(o["fused"], self.fused_centroids, obj.temperature, obj.normalize)[0]
        return out
