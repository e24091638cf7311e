"""COX — Connect & Explore — for out-of-modal (OOM) generalization without instance-level correspondence.

Paper: Huang et al., "Towards Out-of-Modal Generalization without Instance-level Modal Correspondence", ICLR 2025;
spec: ``specs/cox.md``; decisions: ``docs/methods/cox.md``.

Setting (the data contract of :mod:`mmib.data.synthetic.cox_sim`): K in-modal (IM) modalities with labels and
frozen perceptors ``g_k^I``, and one OOM modality — by default the **last** modality of the data set
(``oom_modality``) — learned from scratch. Rows with every IM modality are IM instances; rows with the OOM modality
are OOM samples; rows with both are the few true pairs (semi-supervised). The method never reads the label of a row
that has no IM modality.

Parts: OOM learner ``g^O`` (the encoder of the OOM modality's kind) → ``z^O``; OOM classifier ``h^O`` (linear);
per IM modality a VIB connection ``Enc_k``/``Dec_k`` mapping ``z_k^I`` into the OOM feature space (``m_k``, Eq. 9);
IM heads ``h_k`` (linear on ``z_k^I``) and "optimal" heads ``h_k^*`` (linear on the mappings ``m_k``, applied to
``z^O``), refitted at the start of every epoch on the cached training set.

Schedules (``scenario``):

* ``semi`` (§2.3): ``connect_epochs`` of Eq. 9 on the labelled pairs, then exploration (Eq. 13): per epoch the
  disagreement set D and the agreement pseudo-labels of the unlabelled OOM samples are selected with ``h_k^*``; each
  batch adds ``KL(h(x_d) || h(x_a))`` over the batch's D members and anchors (``AnchorKL``).
* ``unsup`` (§2.4): ``warmup_epochs`` of CE on the Eq. 14 anchors, then the class-centroid connection warm-up, then
  per epoch emergent correspondences (Eq. 15, top S) as labelled anchors + emergent pairs for the connection, and the
  exploration term on D (disagreement samples outside A).

Ablations (``ablation``): ``no_connection`` (no VIB: IM heads and raw IM features are used on ``z^O`` directly,
needs ``d_O = d_k``), ``no_exploration`` (no KL term), ``no_warmup`` (unsupervised: skip the warm-up).

Perceptors (``perceptor.type``): ``identity`` (the IM modalities already are frozen features, e.g. precomputed
ImageBind embeddings or the cox_sim testbed), ``random_linear`` (a fixed random projection), ``run`` (the encoders
of a trained mmib run, e.g. ``clip`` on the IM modalities: ``perceptor.run_dir``), ``pretrain`` (COX first trains an
alignment method on its own IM training rows, then freezes it).

The package's rooms: this module (the method: its parts, interface and loss), :mod:`~mmib.methods.cox.perceptors`
(the four perceptor kinds), :mod:`~mmib.methods.cox.selection` (the cached training set and the per-epoch selection
of both scenarios and the ablations), :mod:`~mmib.methods.cox.baselines` (the paper's baselines).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from mmib.data.dataset import Batch
from mmib.data.spec import DatasetSpec
from mmib.errors import MMIBError
from mmib.methods.base import SPACES, Method, OOMState
from mmib.methods.cox.options import COXAblation, COXOptions
from mmib.methods.cox.perceptors import CoxPerceptors
from mmib.methods.cox.selection import (
    SCENARIOS,
    SEMI_ANCHOR_MODES,
    WARMUP_SELECTIONS,
    CoxSelection,
)
from mmib.methods.options import options_dict
from mmib.methods.registry import register_method
from mmib.nn.encoders import build_encoder
from mmib.nn.heads import MLP
from mmib.objectives.base import LossOutput
from mmib.objectives.cox import AnchorKL, ConnectionLoss, gaussian_kl_to_prior


# ---------------------------------------------------------------------------------------------- modules
class VIBConnection(nn.Module):
    """VIB-style connection of one IM modality (Eq. 9): ``Enc: z^I -> (mu, logvar)``, ``v = mu + sigma * eps``,
    ``Dec: v -> m`` in the OOM feature space. Stochastic when ``sample`` (default: in train mode), ``v = mu`` else."""

    def __init__(self, d_in: int, d_out: int, latent_dim: int = 64, hidden: int = 128, depth: int = 2):
        super().__init__()
        if min(d_in, d_out, latent_dim, hidden) < 1 or depth < 0:
            raise MMIBError(f"VIBConnection: sizes must be >= 1 and depth >= 0, got d_in={d_in}, d_out={d_out}, "
                            f"latent_dim={latent_dim}, hidden={hidden}, depth={depth}")
        self.latent_dim = latent_dim
        self.enc = MLP(d_in, 2 * latent_dim, [hidden] * depth)
        self.dec = MLP(latent_dim, d_out, [hidden] * depth)

    def forward(self, z: torch.Tensor, sample: bool | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.enc(z).chunk(2, dim=1)
        logvar = logvar.clamp(-10.0, 10.0)
        sample = self.training if sample is None else sample
        v = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if sample else mu
        return self.dec(v), mu, logvar


# ---------------------------------------------------------------------------------------------- the method
@register_method("cox")
class COXMethod(CoxPerceptors, CoxSelection, Method):
    """COX (connect & explore); see the module docstring and ``docs/methods/cox.md``."""

    name = "cox"
    supervised = True
    min_modalities = 2
    #: parts the engine's optimizer trains (perceptors, IM heads and h_k^* are never in it)
    trainable = ("oom_encoder", "oom_head", "connections")

    Options = COXOptions

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        o = self.opts
        if spec.task != "classification":
            raise MMIBError(f"method '{self.name}': needs a classification data set, '{spec.name}' is {spec.task}")
        self.scenario = o.scenario
        if self.scenario not in SCENARIOS:
            raise MMIBError(f"method.scenario must be one of {', '.join(SCENARIOS)}, got {self.scenario!r}")
        self.ablation = o.ablation
        if self.ablation is COXAblation.NO_WARMUP and self.scenario != "unsup":
            raise MMIBError("method.ablation=no_warmup applies to scenario=unsup only")
        oom = o.oom_modality or spec.modality_names[-1]
        if oom not in spec.modality_names:
            raise MMIBError(f"method.oom_modality '{oom}' is not a modality of '{spec.name}' "
                            f"({', '.join(spec.modality_names)})")
        self.oom = oom
        self.im = tuple(m for m in spec.modality_names if m != oom)
        self.n_classes = int(spec.n_classes)
        #: the ablation, read once: the VIB connections (unless no_connection) and the exploration loss (unless
        #: no_exploration); no_warmup sets warmup_epochs to 0
        self.use_connection = self.ablation is not COXAblation.NO_CONNECTION
        self.explores = self.ablation is not COXAblation.NO_EXPLORATION
        self.semi_anchor_mode = o.semi_anchor_mode
        if self.semi_anchor_mode not in SEMI_ANCHOR_MODES:
            raise MMIBError(f"method.semi_anchor_mode must be one of {', '.join(SEMI_ANCHOR_MODES)}")
        self.warmup_selection = o.warmup_selection
        if self.warmup_selection not in WARMUP_SELECTIONS:
            raise MMIBError(f"method.warmup_selection must be one of {', '.join(WARMUP_SELECTIONS)}")
        self.connect_epochs = o.connect_epochs
        self.warmup_epochs = 0 if self.ablation is COXAblation.NO_WARMUP else o.warmup_epochs
        self.anchor_fraction = o.anchor_fraction
        if not 0 < self.anchor_fraction <= 1 or self.connect_epochs < 0 or self.warmup_epochs < 0:
            raise MMIBError("method: anchor_fraction must lie in (0, 1] and the phase lengths must be >= 0")
        self.beta = o.connection.beta
        self.head_fit = options_dict(o.head_fit)
        self.centroid_steps, self.mmd_steps = o.centroid_steps, o.mmd_steps
        self.kl_weight, self.chunk_size = o.kl_weight, o.chunk_size

        # ---- perceptors
        self.perceptors = self._build_perceptors(o.perceptor)
        for p in self.perceptors.parameters():
            p.requires_grad_(False)
        self.register_buffer("perceptor_ready", torch.tensor(o.perceptor.type != "pretrain"))
        d_im = {m: self.perceptors[m].out_dim for m in self.im}
        d_o = o.oom_dim
        if d_o is None:
            d_o = d_im[self.im[0]] if len(set(d_im.values())) == 1 else 64
        self.d_oom = int(d_o)
        self._check_dims(d_im)
        # ---- OOM learner, classifier, connections, heads
        self.oom_encoder = build_encoder(spec.modality(oom), self.d_oom, self.encoder_cfg)
        self.oom_head = nn.Linear(self.d_oom, self.n_classes)
        cc = o.connection
        self.connections = nn.ModuleDict({
            m: VIBConnection(d_im[m], self.d_oom, cc.latent_dim, cc.hidden, cc.depth)
            for m in self.im
        }) if self.use_connection else nn.ModuleDict()
        self.im_heads = nn.ModuleDict({m: nn.Linear(d_im[m], self.n_classes) for m in self.im})
        self.optimal_heads = nn.ModuleDict({m: nn.Linear(self.d_oom, self.n_classes) for m in self.im})
        for mod in (self.im_heads, self.optimal_heads):
            for p in mod.parameters():
                p.requires_grad_(False)
        self.anchor_kl = AnchorKL(o.kl.normalizer, o.kl.direction, o.kl.stopgrad_anchor)
        self.recon = ConnectionLoss(o.recon_reduction, o.detach_oom_target)
        self._cache: dict[str, Any] | None = None
        self._roles: dict[str, torch.Tensor] | None = None
        self.history: list[dict[str, float]] = []

    def _check_dims(self, d_im: Mapping[str, int]) -> None:
        needs_equal = (not self.use_connection) or (self.scenario == "unsup" and self.warmup_selection == "literal"
                                                    and self.warmup_epochs > 0)
        if needs_equal and any(d != self.d_oom for d in d_im.values()):
            raise MMIBError(f"method '{self.name}': ablation={self.ablation}, warmup_selection={self.warmup_selection} "
                            f"apply IM heads to OOM features, so every IM feature dimension must equal oom_dim "
                            f"({self.d_oom}); got {dict(d_im)}. Use perceptor.type=random_linear/pretrain with one "
                            "dim, or warmup_selection=mmd.")

    # ------------------------------------------------------------------ features
    def encode_oom(self, x: torch.Tensor, batch: Batch | None = None) -> torch.Tensor:
        lengths = self.lengths_of(batch, self.oom) if batch is not None else None
        return self.oom_encoder(x, lengths)

    def map_im(self, m: str, z: torch.Tensor, sample: bool | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``m_k = Dec_k(v_k)`` in the OOM feature space (raw ``z`` without a connection)."""
        if not self.use_connection:
            return z, z.new_zeros(0), z.new_zeros(0)
        return self.connections[m](z, sample)

    # ------------------------------------------------------------------ interface
    def embed(self, batch: Batch, modalities: Sequence[str] | None = None, space: str = "representation") -> dict[str, torch.Tensor]:
        """OOM modality: ``z^O`` (both spaces). IM modality k: ``representation`` = the frozen perceptor feature
        ``z_k^I``; ``embedding`` = its deterministic mapping ``m_k`` into the OOM feature space (retrieval space)."""
        if space not in SPACES:
            raise MMIBError(f"unknown representation space '{space}'; valid: {', '.join(SPACES)}")
        mods = self.modalities_of(batch, modalities)
        out = {}
        for m in mods:
            if m == self.oom:
                out[m] = self.encode_oom(batch["x"][m], batch)
            else:
                z = self.perceive(m, batch["x"][m])
                out[m] = z if space == "representation" else self.map_im(m, z, sample=False)[0]
        return out

    def predict(self, batch: Batch, modalities: Sequence[str] | None = None) -> torch.Tensor:
        """OOM class logits ``h^O(g^O(x^O))``; only the OOM input is used (the task of OOM generalization)."""
        mods = self.modalities_of(batch, modalities)
        if self.oom not in mods:
            raise MMIBError(f"method '{self.name}' predicts from the OOM modality '{self.oom}'; it was not requested "
                            f"(got {', '.join(mods)})")
        return self.oom_head(self.encode_oom(batch["x"][self.oom], batch))

    def components(self, batch: Batch, modalities: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """``oom`` = z^O; ``map:<k>`` = m_k (IM modality k mapped into the OOM space); ``hstar:<k>`` = logits of the
        optimal head h_k^* (last refreshed) on z^O — the agreement/disagreement analysis of Figs. 5 and 6."""
        mods = self.modalities_of(batch, modalities)
        out: dict[str, torch.Tensor] = {}
        for m in mods:
            if m == self.oom:
                z = self.encode_oom(batch["x"][m], batch)
                out["oom"] = z
                for k in self.im:
                    head = self.optimal_heads[k] if self.use_connection else self.im_heads[k]
                    out[f"hstar:{k}"] = head(z)
            else:
                out[f"map:{m}"] = self.map_im(m, self.perceive(m, batch["x"][m]), sample=False)[0]
        return out

    def oom_state(self, epoch: int | None = None) -> OOMState:
        """COX's out-of-modal state (:meth:`Method.oom_state`): the OOM modality, the schedule's phase at ``epoch``
        (:meth:`phase`), the current anchors (:meth:`anchor_pseudolabels`) and its connections and heads."""
        return OOMState(self.oom, self.phase(epoch), self.anchor_pseudolabels(), connections=True)

    def configure_optimizers(self):
        opt_cfg = options_dict(self.opts.optim)
        name, lr, wd = opt_cfg.pop("name"), opt_cfg.pop("lr"), opt_cfg.pop("weight_decay")
        opts = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
        if name not in opts:
            raise MMIBError(f"method.optim.name: unknown optimizer '{name}'; valid: {', '.join(opts)}")
        params = [p for part in self.trainable for p in getattr(self, part).parameters()]
        return opts[name](params, lr=lr, weight_decay=wd, **opt_cfg)

    # ------------------------------------------------------------------ loss
    def _zero(self, ref: torch.Tensor) -> torch.Tensor:
        return ref.sum() * 0.0

    def _recon(self, z_o: torch.Tensor, z_im: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if not self.use_connection or z_o.shape[0] == 0:
            return self._zero(z_o), {}
        maps, kls = [], []
        for m in self.im:
            mk, mu, logvar = self.connections[m](z_im[m])
            maps.append(mk)
            if self.beta > 0:
                kls.append(gaussian_kl_to_prior(mu, logvar))
        out = self.recon(z_o, maps)
        terms = {"recon": out.loss.detach()}
        if not kls:
            return out.loss, terms
        kl_prior = sum(kls)  # summed over the K connections, each a mean over the rows
        terms["kl_prior"] = kl_prior.detach()
        return out.loss + self.beta * kl_prior, terms

    def _supervised(self, batch: Batch, sel: torch.Tensor, labelled: torch.Tensor, z_o: torch.Tensor,
                    logits: torch.Tensor, terms: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """CE + reconstruction on labelled true pairs (Eq. 9). In training with ``labelled_batch_size > 0`` the pairs
        are a fresh random draw of that many cached training pairs per step (the authors' code balances labelled and
        unlabelled samples ~50/50 per batch); otherwise the batch's own paired rows. Returns (loss, their logits)."""
        c = self._cache
        lbs = self.opts.labelled_batch_size
        if self.training and c is not None and lbs > 0 and c["pair_y"].shape[0] > 0:
            pick = torch.randint(0, c["pair_y"].shape[0], (lbs,), device=self.device)
            op = c["pair_oom_pos"][pick]
            lengths = c["lengths_oom"][op] if c["lengths_oom"] is not None else None
            z_l = self.oom_encoder(c["x_oom"][op], lengths)
            y = c["pair_y"][pick]
            z_im = {m: c["z_im"][m][c["pair_im_pos"][pick]] for m in self.im}
        elif bool(labelled.any()):
            z_l = z_o[labelled]
            y = batch["y"][sel][labelled]
            z_im = {m: self.perceive(m, batch["x"][m][sel][labelled]) for m in self.im}
        else:
            return self._zero(logits), logits[:0]
        logits_l = self.oom_head(z_l)
        ce = F.cross_entropy(logits_l, y)
        rec, rt = self._recon(z_l, z_im)
        terms.update({"ce_labelled": ce.detach(), **rt})
        return ce + rec, logits_l

    def loss(self, batch: Batch) -> LossOutput:
        self.modalities_of(batch, self.spec.modality_names)
        has_oom, has_im = self._row_masks(batch)
        sel = torch.nonzero(has_oom, as_tuple=True)[0]
        x_o = batch["x"][self.oom][sel]
        z_o = self.encode_oom(x_o, _subset_lengths(batch, self.oom, sel))
        logits = self.oom_head(z_o)
        labelled = has_im[sel]
        terms: dict[str, torch.Tensor] = {}
        loss = self._zero(logits)
        # labelled true pairs: CE + reconstruction (Eq. 9)
        sup, logits_lab = self._supervised(batch, sel, labelled, z_o, logits, terms)
        loss = loss + sup
        training = self.training and self._roles is not None
        phase = self.phase() if training else "eval"
        if training and phase != "connect":
            index = batch["index"].to(sel.device)[sel] if "index" in batch else None
            if index is None:
                raise MMIBError(f"method '{self.name}': training batches need 'index' (the data set row ids)")
            a_label, in_d, partner = self._roles_of(index)
            a_label = torch.where(labelled, -1, a_label)  # a labelled row keeps its true label
            is_a = a_label >= 0
            if bool(is_a.any()):
                ce_a = F.cross_entropy(logits[is_a], a_label[is_a])
                loss = loss + ce_a
                terms["ce_anchor"] = ce_a.detach()
            if self.scenario == "unsup" and phase == "explore" and bool(is_a.any()) and self.use_connection:
                pos = partner[is_a]
                z_im = {m: self._cache["z_im"][m][pos] for m in self.im}
                rec, rt = self._recon(z_o[is_a], z_im)
                loss = loss + rec
                terms.update({f"{k}_emergent": v for k, v in rt.items()})
            if phase == "explore" and self.explores:
                anchors = is_a | labelled
                kl = self.anchor_kl(logits[in_d & ~anchors], torch.cat([logits[is_a], logits_lab]))
                loss = loss + self.kl_weight * kl.loss
                terms["kl"] = kl.loss.detach()
                terms["frac_D"] = (in_d & ~anchors).float().mean()
        return LossOutput(loss, terms)


def _subset_lengths(batch: Batch, m: str, sel: torch.Tensor) -> Batch | None:
    lengths = (batch.get("lengths") or {}).get(m)
    return {"lengths": {m: lengths[sel]}} if lengths is not None else None
