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
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from mmib.data.dataset import Batch
from mmib.data.spec import DatasetSpec
from mmib.errors import MMIBError
from mmib.methods.base import SPACES, Method
from mmib.methods.registry import build_method, load_method, register_method, run_checkpoint
from mmib.nn.encoders import build_encoder
from mmib.nn.heads import MLP
from mmib.objectives.base import LossOutput
from mmib.objectives.cox import (
    AnchorKL,
    ConnectionLoss,
    agreement_mask,
    emergent_correspondence,
    gaussian_kl_to_prior,
    mmd_rbf,
    select_agreement_anchors,
)

SCENARIOS = ("semi", "unsup")
ABLATIONS = ("none", "no_connection", "no_exploration", "no_warmup")
PERCEPTORS = ("identity", "random_linear", "run", "pretrain")
SEMI_ANCHOR_MODES = ("labeled", "labeled+agreement_pseudolabel")
WARMUP_SELECTIONS = ("literal", "mmd")


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


class FrozenPerceptor(nn.Module):
    """A frozen feature extractor of one IM modality: never trained by COX, always in eval mode."""

    def __init__(self, kind: str, in_dim: int, out_dim: int, seed: int = 0, model: Method | None = None,
                 modality: str = "", space: str = "representation"):
        super().__init__()
        self.kind, self.out_dim, self.modality, self.space = kind, out_dim, modality, space
        self.model = model
        if kind == "random_linear":
            g = torch.Generator().manual_seed(int(seed))
            self.register_buffer("weight", torch.randn(out_dim, in_dim, generator=g) / math.sqrt(in_dim))

    def train(self, mode: bool = True) -> FrozenPerceptor:  # always eval
        return super().train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "identity":
            return x.reshape(x.shape[0], -1)
        if self.kind == "random_linear":
            return x.reshape(x.shape[0], -1) @ self.weight.T
        return self.model.embed({"x": {self.modality: x}}, [self.modality], space=self.space)[self.modality]


def fit_linear_head(head: nn.Linear, x: torch.Tensor, y: torch.Tensor, steps: int = 100, lr: float = 0.05,
                    weight_decay: float = 1e-4, seed: int = 0) -> nn.Linear:
    """Refit ``head`` in place by full-batch Adam on (x, y) with cross-entropy from a seeded re-initialization."""
    g = torch.Generator().manual_seed(int(seed))
    bound = 1.0 / math.sqrt(head.in_features)
    with torch.no_grad():
        head.weight.copy_((torch.rand(head.weight.shape, generator=g) * 2 - 1) * bound)
        head.bias.zero_()
    x, y = x.detach(), y.detach()
    flags = [p.requires_grad for p in head.parameters()]
    for p in head.parameters():
        p.requires_grad_(True)
    opt = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    with torch.enable_grad():
        for _ in range(int(steps)):
            opt.zero_grad()
            F.cross_entropy(head(x), y).backward()
            opt.step()
    head.zero_grad(set_to_none=True)
    for p, f in zip(head.parameters(), flags):
        p.requires_grad_(f)
    return head


def _sub(cfg: Mapping[str, Any], key: str) -> dict[str, Any]:
    return dict(cfg.get(key) or {})


# ---------------------------------------------------------------------------------------------- the method
@register_method("cox")
class COXMethod(Method):
    """COX (connect & explore); see the module docstring and ``docs/methods/cox.md``."""

    name = "cox"
    supervised = True
    min_modalities = 2
    #: parts the engine's optimizer trains (perceptors, IM heads and h_k^* are never in it)
    trainable = ("oom_encoder", "oom_head", "connections")

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        c = self.cfg
        if spec.task != "classification":
            raise MMIBError(f"method '{self.name}': needs a classification data set, '{spec.name}' is {spec.task}")
        self.scenario = str(c.get("scenario", "semi"))
        if self.scenario not in SCENARIOS:
            raise MMIBError(f"method.scenario must be one of {', '.join(SCENARIOS)}, got {self.scenario!r}")
        self.ablation = str(c.get("ablation", "none"))
        if self.ablation not in ABLATIONS:
            raise MMIBError(f"method.ablation must be one of {', '.join(ABLATIONS)}, got {self.ablation!r}")
        if self.ablation == "no_warmup" and self.scenario != "unsup":
            raise MMIBError("method.ablation=no_warmup applies to scenario=unsup only")
        oom = c.get("oom_modality") or spec.modality_names[-1]
        if oom not in spec.modality_names:
            raise MMIBError(f"method.oom_modality '{oom}' is not a modality of '{spec.name}' "
                            f"({', '.join(spec.modality_names)})")
        self.oom = oom
        self.im = tuple(m for m in spec.modality_names if m != oom)
        self.n_classes = int(spec.n_classes)
        self.use_connection = self.ablation != "no_connection"
        self.semi_anchor_mode = str(c.get("semi_anchor_mode", "labeled+agreement_pseudolabel"))
        if self.semi_anchor_mode not in SEMI_ANCHOR_MODES:
            raise MMIBError(f"method.semi_anchor_mode must be one of {', '.join(SEMI_ANCHOR_MODES)}")
        self.warmup_selection = str(c.get("warmup_selection", "literal"))
        if self.warmup_selection not in WARMUP_SELECTIONS:
            raise MMIBError(f"method.warmup_selection must be one of {', '.join(WARMUP_SELECTIONS)}")
        self.connect_epochs = int(c.get("connect_epochs", 5))
        self.warmup_epochs = 0 if self.ablation == "no_warmup" else int(c.get("warmup_epochs", 5))
        self.anchor_fraction = float(c.get("anchor_fraction", 0.1))
        if not 0 < self.anchor_fraction <= 1 or self.connect_epochs < 0 or self.warmup_epochs < 0:
            raise MMIBError("method: anchor_fraction must lie in (0, 1] and the phase lengths must be >= 0")
        self.beta = float(_sub(c, "connection").get("beta", 0.0))
        self.head_fit = {"steps": 100, "lr": 0.05, **_sub(c, "head_fit")}
        self.centroid_steps = int(c.get("centroid_steps", 200))
        self.mmd_steps = int(c.get("mmd_steps", 300))
        self.kl_weight = float(c.get("kl_weight", 1.0))
        self.chunk_size = int(c.get("chunk_size", 4096))

        # ---- perceptors
        self.perceptors = self._build_perceptors(_sub(c, "perceptor"))
        for p in self.perceptors.parameters():
            p.requires_grad_(False)
        self.register_buffer("perceptor_ready", torch.tensor(_sub(c, "perceptor").get("type", "identity") != "pretrain"))
        d_im = {m: self.perceptors[m].out_dim for m in self.im}
        d_o = c.get("oom_dim")
        if d_o is None:
            d_o = d_im[self.im[0]] if len(set(d_im.values())) == 1 else 64
        self.d_oom = int(d_o)
        self._check_dims(d_im)
        # ---- OOM learner, classifier, connections, heads
        self.oom_encoder = build_encoder(spec.modality(oom), self.d_oom, self.encoder_cfg)
        self.oom_head = nn.Linear(self.d_oom, self.n_classes)
        cc = _sub(c, "connection")
        self.connections = nn.ModuleDict({
            m: VIBConnection(d_im[m], self.d_oom, int(cc.get("latent_dim", 64)), int(cc.get("hidden", 128)),
                             int(cc.get("depth", 2)))
            for m in self.im
        }) if self.use_connection else nn.ModuleDict()
        self.im_heads = nn.ModuleDict({m: nn.Linear(d_im[m], self.n_classes) for m in self.im})
        self.optimal_heads = nn.ModuleDict({m: nn.Linear(self.d_oom, self.n_classes) for m in self.im})
        for mod in (self.im_heads, self.optimal_heads):
            for p in mod.parameters():
                p.requires_grad_(False)
        kl = _sub(c, "kl")
        self.anchor_kl = AnchorKL(kl.get("normalizer", "sum_sizes"), kl.get("direction", "paper"),
                                  bool(kl.get("stopgrad_anchor", True)))
        self.recon = ConnectionLoss(str(c.get("recon_reduction", "mean")), bool(c.get("detach_oom_target", False)))
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

    # ------------------------------------------------------------------ perceptors
    def _build_perceptors(self, pc: dict[str, Any]) -> nn.ModuleDict:
        kind = str(pc.get("type", "identity"))
        if kind not in PERCEPTORS:
            raise MMIBError(f"method.perceptor.type must be one of {', '.join(PERCEPTORS)}, got {kind!r}")
        space = str(pc.get("space", "representation"))
        if space not in SPACES:
            raise MMIBError(f"method.perceptor.space must be one of {', '.join(SPACES)}, got {space!r}")
        out: dict[str, FrozenPerceptor] = {}
        if kind in ("identity", "random_linear"):
            for i, m in enumerate(self.im):
                ms = self.spec.modality(m)
                if ms.kind != "vector" and kind == "identity":
                    raise MMIBError(f"method.perceptor.type=identity needs vector IM modalities; '{m}' is a {ms.kind}")
                d_in = int(math.prod(s for s in ms.shape if s))
                dim = d_in if kind == "identity" else int(pc.get("dim", 16))
                out[m] = FrozenPerceptor(kind, d_in, dim, seed=int(pc.get("seed", 0)) + i)
            return nn.ModuleDict(out)
        if kind == "run":
            if not pc.get("run_dir"):
                raise MMIBError("method.perceptor.type=run needs perceptor.run_dir (an mmib run trained on the IM "
                                "modalities, e.g. `mmib train method=clip data=mfeat data.views=[...]`)")
            model = load_method(str(run_checkpoint(pc["run_dir"])[1]))  # the run's method (its data is not needed)
            missing = [m for m in self.im if m not in model.spec.modality_names]
            if missing:
                raise MMIBError(f"perceptor run '{pc['run_dir']}' has no modality {missing} "
                                f"(it has {', '.join(model.spec.modality_names)})")
        else:  # pretrain
            if len(self.im) < 2:
                raise MMIBError("method.perceptor.type=pretrain trains an alignment method on the IM modalities "
                                "and needs K >= 2 of them; supply features (identity) or a run instead")
            mcfg = {"name": "clip", "representation_dim": 16, "embed_dim": 16, "head_layers": 2,
                    **_sub(pc, "method")}
            # the perceptor sees the IM modalities only: drop per-modality encoder settings of the others
            enc = dict(self.encoder_cfg or {})
            if isinstance(enc.get("modalities"), Mapping):
                enc["modalities"] = {k: v for k, v in enc["modalities"].items() if k in self.im}
            model = build_method(mcfg["name"], self.spec.subset(self.im), mcfg, enc)
        model.eval()
        for m in self.im:
            ms = self.spec.modality(m)
            probe = torch.zeros(2, *[s or 8 for s in ms.shape])
            with torch.no_grad():
                dim = model.embed({"x": {m: probe}}, [m], space=space)[m].shape[1]
            out[m] = FrozenPerceptor(kind, 0, int(dim), model=None, modality=m, space=space)
        self.perceptor_model = model  # a submodule: saved with COX's checkpoint, never in its optimizer
        return nn.ModuleDict(out)

    def perceive(self, m: str, x: torch.Tensor) -> torch.Tensor:
        """Frozen IM features ``z_m^I = g_m^I(x)`` (no gradient, ever)."""
        with torch.no_grad():
            p = self.perceptors[m]
            if p.kind in ("run", "pretrain"):
                self.perceptor_model.eval()
                return self.perceptor_model.embed({"x": {m: x}}, [m], space=p.space)[m].detach()
            return p(x).detach()

    def _pretrain_perceptor(self, x_im: dict[str, torch.Tensor]) -> None:
        pc = _sub(self.cfg, "perceptor")
        model = self.perceptor_model
        epochs, bs = int(pc.get("epochs", 30)), int(pc.get("batch_size", 128))
        n = next(iter(x_im.values())).shape[0]
        if n < 2:
            raise MMIBError("perceptor pretraining: fewer than 2 IM training rows")
        for p in model.parameters():
            p.requires_grad_(True)
        opt = torch.optim.Adam(model.parameters(), lr=float(pc.get("lr", 1e-3)))
        g = torch.Generator().manual_seed(int(pc.get("seed", 0)))
        model.train()
        with torch.enable_grad():
            for _ in range(epochs):
                perm = torch.randperm(n, generator=g)
                for s in range(0, n - 1, bs):
                    idx = perm[s : s + bs].to(self.device)
                    if len(idx) < 2:
                        continue
                    opt.zero_grad()
                    out = model.loss({"x": {m: v[idx] for m, v in x_im.items()}})
                    out.loss.backward()
                    opt.step()
        model.eval()
        model.zero_grad(set_to_none=True)
        for p in model.parameters():
            p.requires_grad_(False)
        self.perceptor_ready.fill_(True)

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

    def configure_optimizers(self):
        opt_cfg = dict(self.cfg.get("optim") or {})
        name = opt_cfg.pop("name", "adam")
        lr, wd = float(opt_cfg.pop("lr", 1e-3)), float(opt_cfg.pop("weight_decay", 1e-5))
        opts = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
        if name not in opts:
            raise MMIBError(f"method.optim.name: unknown optimizer '{name}'; valid: {', '.join(opts)}")
        params = [p for part in self.trainable for p in getattr(self, part).parameters()]
        return opts[name](params, lr=lr, weight_decay=wd, **opt_cfg)

    # ------------------------------------------------------------------ cached training set
    def _row_masks(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        mask = batch.get("mask") or {}
        n = batch["x"][self.oom].shape[0]
        ones = torch.ones(n, dtype=torch.bool, device=batch["x"][self.oom].device)
        has_oom = mask.get(self.oom, ones).bool()
        has_im = ones.clone()
        for m in self.im:
            has_im &= mask.get(m, ones).bool()
        return has_oom, has_im

    def build_cache(self, batch: Batch, n_rows: int | None = None) -> None:
        """Cache the training set (one batch holding every training row): OOM inputs, frozen IM features, IM labels,
        and the row lookups used by the per-epoch selection. Labels of rows without IM modalities are not kept."""
        self.modalities_of(batch, self.spec.modality_names)
        if "y" not in batch:
            raise MMIBError(f"method '{self.name}' needs IM labels: the training batch has no 'y'")
        has_oom, has_im = self._row_masks(batch)
        if int(has_im.sum()) < self.n_classes:
            raise MMIBError(f"method '{self.name}': only {int(has_im.sum())} training rows hold every IM modality "
                            f"({', '.join(self.im)}); COX needs labelled IM instances")
        if int(has_oom.sum()) < 1:
            raise MMIBError(f"method '{self.name}': no training row holds the OOM modality '{self.oom}'")
        dev = self.device
        index = batch["index"].to(dev)
        x_im = {m: batch["x"][m][has_im].to(dev) for m in self.im}
        if not bool(self.perceptor_ready):
            self._pretrain_perceptor(x_im)
        n_rows = int(n_rows or int(index.max()) + 1)
        pos_im = torch.full((n_rows,), -1, dtype=torch.long, device=dev)
        pos_im[index[has_im]] = torch.arange(int(has_im.sum()), device=dev)
        pos_oom = torch.full((n_rows,), -1, dtype=torch.long, device=dev)
        pos_oom[index[has_oom]] = torch.arange(int(has_oom.sum()), device=dev)
        paired = (has_oom & has_im)[has_oom]
        self._cache = {
            "x_oom": batch["x"][self.oom][has_oom].to(dev),
            "lengths_oom": (self.lengths_of(batch, self.oom)[has_oom].to(dev)
                            if self.lengths_of(batch, self.oom) is not None else None),
            "z_im": {m: self.perceive(m, x) for m, x in x_im.items()},
            "y_im": batch["y"][has_im].to(dev),
            "paired": paired.to(dev),
            "pos_im": pos_im, "pos_oom": pos_oom, "n_rows": n_rows,
        }
        pair_rows = index[has_oom & has_im]
        self._cache.update({"pair_oom_pos": pos_oom[pair_rows], "pair_im_pos": pos_im[pair_rows],
                            "pair_y": batch["y"][(has_oom & has_im).cpu()].to(dev)})
        for m in self.im:  # IM heads h_k on the frozen features (literal warm-up, w/o connection)
            fit_linear_head(self.im_heads[m], self._cache["z_im"][m], self._cache["y_im"], **self.head_fit)

    @torch.no_grad()
    def _oom_features(self) -> torch.Tensor:
        c = self._cache
        was = self.oom_encoder.training
        self.oom_encoder.eval()
        out = []
        for s in range(0, c["x_oom"].shape[0], 4096):
            lengths = c["lengths_oom"][s : s + 4096] if c["lengths_oom"] is not None else None
            out.append(self.oom_encoder(c["x_oom"][s : s + 4096], lengths))
        self.oom_encoder.train(was)
        return torch.cat(out)

    @torch.no_grad()
    def im_mappings(self) -> dict[str, torch.Tensor]:
        """Deterministic mappings ``m_k`` of every cached IM training instance (raw features without a connection)."""
        return {m: self.map_im(m, z, sample=False)[0] for m, z in self._cache["z_im"].items()}

    def refresh_optimal_heads(self, maps: Mapping[str, torch.Tensor]) -> None:
        """Fit ``h_k^*`` on ``(m_k, y^I)`` (G-2); without a connection the IM heads play that role."""
        if self.use_connection:
            for m in self.im:
                fit_linear_head(self.optimal_heads[m], maps[m], self._cache["y_im"], **self.head_fit)

    def _star_logits(self, z: torch.Tensor) -> list[torch.Tensor]:
        heads = self.optimal_heads if self.use_connection else self.im_heads
        return [heads[m](z) for m in self.im]

    def _set_roles(self, anchor_pos: torch.Tensor, anchor_label: torch.Tensor, d_pos: torch.Tensor,
                   partner_pos: torch.Tensor | None = None) -> None:
        """Per-row lookups for the batches: anchor label (-1 = none), D membership, emergent IM partner."""
        c = self._cache
        dev = self.device
        rows = torch.nonzero(c["pos_oom"] >= 0, as_tuple=True)[0]
        row_of_pos = torch.empty(len(rows), dtype=torch.long, device=dev)
        row_of_pos[c["pos_oom"][rows]] = rows
        label = torch.full((c["n_rows"],), -1, dtype=torch.long, device=dev)
        label[row_of_pos[anchor_pos]] = anchor_label
        in_d = torch.zeros(c["n_rows"], dtype=torch.bool, device=dev)
        in_d[row_of_pos[d_pos]] = True
        partner = torch.full((c["n_rows"],), -1, dtype=torch.long, device=dev)
        if partner_pos is not None:
            partner[row_of_pos[anchor_pos]] = partner_pos
        self._roles = {"label": label, "in_d": in_d, "partner": partner}

    # ------------------------------------------------------------------ per-epoch schedule
    def phase(self, epoch: int | None = None) -> str:
        e = self.current_epoch if epoch is None else epoch
        if self.scenario == "semi":
            return "connect" if e < self.connect_epochs else "explore"
        return "warmup" if e < self.warmup_epochs else "explore"

    def on_fit_start(self) -> None:
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None or not hasattr(dm, "split_batch"):
            raise MMIBError(f"method '{self.name}' trains with an mmib MultimodalDataModule (it caches the training "
                            "set once per epoch for the selection rules)")
        self.build_cache(dm.split_batch("train"), n_rows=len(dm.dataset))

    def on_train_epoch_start(self) -> None:
        self.refresh(self.current_epoch)

    @torch.no_grad()
    def refresh(self, epoch: int) -> dict[str, float]:
        """The per-epoch selection (G-5/G-6): h_k^*, and the anchor / disagreement sets of this epoch's phase."""
        if self._cache is None:
            raise MMIBError(f"method '{self.name}': refresh() before build_cache()")
        c = self._cache
        phase = self.phase(epoch)
        z = self._oom_features()
        n_oom = z.shape[0]
        top = max(1, int(round(self.anchor_fraction * n_oom)))
        info: dict[str, float] = {"epoch": float(epoch)}
        empty = torch.zeros(0, dtype=torch.long, device=self.device)
        if self.scenario == "semi":
            if phase == "connect":
                self.refresh_optimal_heads(self.im_mappings())  # only for the A/D analysis (Fig. 6a)
                self._set_roles(empty, empty, empty)
                d_log = torch.nonzero(~c["paired"] & ~agreement_mask(self._star_logits(z)), as_tuple=True)[0]
                info.update(self._entropy_on(z, d_log))
            else:
                maps = self.im_mappings()
                self.refresh_optimal_heads(maps)
                logits = self._star_logits(z)
                unl = ~c["paired"]
                agree = agreement_mask(logits)
                d_pos = torch.nonzero(unl & ~agree, as_tuple=True)[0]
                use_pl = self.semi_anchor_mode != "labeled" or self.ablation == "no_exploration"
                a_pos = torch.nonzero(unl & agree, as_tuple=True)[0] if use_pl else empty
                self._set_roles(a_pos, logits[0][a_pos].argmax(1), d_pos)
                info.update({"n_D": float(len(d_pos)), "n_agree_pl": float(len(a_pos)), **self._entropy_on(z, d_pos)})
        else:
            if phase == "warmup":
                if self.warmup_selection == "mmd" and epoch == 0 and self.use_connection:
                    self._mmd_init_connection(z)
                if self.warmup_selection == "mmd" and self.use_connection:
                    self.refresh_optimal_heads(self.im_mappings())
                    logits = self._star_logits(z)
                else:  # literal: IM heads on the raw OOM features (U-1)
                    logits = [self.im_heads[m](z) for m in self.im]
                idx, pl, _ = select_agreement_anchors([F.softmax(s, 1) for s in logits], top)
                self._set_roles(idx, pl, empty)
                info.update({"n_anchor": float(len(idx))})
            else:
                if epoch == self.warmup_epochs and self.warmup_epochs > 0 and self.use_connection:
                    self._centroid_warmup(z)
                maps = self.im_mappings()
                self.refresh_optimal_heads(maps)
                idx, labels, istar, _ = emergent_correspondence(z, [maps[m] for m in self.im], c["y_im"], top,
                                                                self.chunk_size)
                agree = agreement_mask(self._star_logits(z))
                not_a = torch.ones(n_oom, dtype=torch.bool, device=self.device)
                not_a[idx] = False
                d_pos = torch.nonzero(~agree & not_a, as_tuple=True)[0]  # U-2: D excludes A
                self._set_roles(idx, labels, d_pos, partner_pos=istar[idx])
                info.update({"n_anchor": float(len(idx)), "n_D": float(len(d_pos)), **self._entropy_on(z, d_pos)})
        self.history.append(info)
        return info

    @torch.no_grad()
    def _entropy_on(self, z: torch.Tensor, d_pos: torch.Tensor) -> dict[str, float]:
        """Evaluation only (never in a loss): mean entropy (nats) of h^O's posterior over the training samples
        ``d_pos`` (the disagreement set of h_k^*) at selection time, with log C = the uniform posterior's."""
        if len(d_pos) == 0:
            return {"entropy_D": float("nan")}
        logp = F.log_softmax(self.oom_head(z[d_pos]), dim=1)
        return {"entropy_D": float(-(logp.exp() * logp).sum(1).mean())}

    def anchor_pseudolabels(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The current epoch's anchors as (data set row ids, pseudo-labels), for evaluation (e.g. their accuracy
        against the hidden OOM labels in :class:`mmib.eval.oom.OOMTracker`); empty before the first refresh. In the
        semi scenario these are the agreement pseudo-labels, in the unsupervised warm-up the Eq. 14 anchors, in
        the unsupervised explore phase the emergent (Eq. 15) anchors."""
        if self._roles is None:
            empty = torch.zeros(0, dtype=torch.long)
            return empty, empty
        rows = torch.nonzero(self._roles["label"] >= 0, as_tuple=True)[0]
        return rows.cpu(), self._roles["label"][rows].cpu()

    def _centroid_warmup(self, z: torch.Tensor) -> None:
        """Unsupervised connection warm-up (§3.5): pair the OOM centroid of predicted class y with the IM centroid of
        true class y and train the connections on these C pairs (reconstruction only, OOM centroids detached)."""
        c = self._cache
        pred = self.oom_head(z).argmax(1)
        classes = [y for y in range(self.n_classes) if bool((pred == y).any()) and bool((c["y_im"] == y).any())]
        if not classes:
            return
        tgt = torch.stack([z[pred == y].mean(0) for y in classes])
        src = {m: torch.stack([c["z_im"][m][c["y_im"] == y].mean(0) for y in classes]) for m in self.im}
        opt = torch.optim.Adam(self.connections.parameters(), lr=float(self.cfg.get("centroid_lr", 1e-3)))
        with torch.enable_grad():
            for _ in range(self.centroid_steps):
                opt.zero_grad()
                maps = [self.connections[m](src[m], sample=True)[0] for m in self.im]
                ConnectionLoss(self.recon.reduction, True)(tgt, maps).loss.backward()
                opt.step()
        self.connections.zero_grad(set_to_none=True)

    def _mmd_init_connection(self, z: torch.Tensor) -> None:
        """OUR opt-in fix for U-1 (not in the paper): before Eq. 14, fit each connection so that the mapped IM
        features match the marginal distribution of the OOM features (RBF-MMD, OOM side detached)."""
        c = self._cache
        g = torch.Generator().manual_seed(int(self.cfg.get("seed", 0)))
        opt = torch.optim.Adam(self.connections.parameters(), lr=float(self.cfg.get("mmd_lr", 1e-3)))
        n_i, n_o = c["y_im"].shape[0], z.shape[0]
        with torch.enable_grad():
            for _ in range(self.mmd_steps):
                ii = torch.randint(0, n_i, (min(256, n_i),), generator=g).to(self.device)
                jj = torch.randint(0, n_o, (min(256, n_o),), generator=g).to(self.device)
                opt.zero_grad()
                loss = sum(mmd_rbf(self.connections[m](c["z_im"][m][ii], sample=False)[0], z[jj]) for m in self.im)
                loss.backward()
                opt.step()
        self.connections.zero_grad(set_to_none=True)

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
        lbs = int(self.cfg.get("labelled_batch_size", 32))
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

    def _roles_of(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        r = self._roles
        if r is None:
            n = index.shape[0]
            return (torch.full((n,), -1, dtype=torch.long, device=index.device),
                    torch.zeros(n, dtype=torch.bool, device=index.device),
                    torch.full((n,), -1, dtype=torch.long, device=index.device))
        inside = index < r["label"].shape[0]
        idx = index.clamp(max=r["label"].shape[0] - 1)
        label = torch.where(inside, r["label"][idx], -1)
        return label, r["in_d"][idx] & inside, torch.where(inside, r["partner"][idx], -1)

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
            if phase == "explore" and self.ablation != "no_exploration":
                anchors = is_a | labelled
                kl = self.anchor_kl(logits[in_d & ~anchors], torch.cat([logits[is_a], logits_lab]))
                loss = loss + self.kl_weight * kl.loss
                terms["kl"] = kl.loss.detach()
                terms["frac_D"] = (in_d & ~anchors).float().mean()
        return LossOutput(loss, terms)


def _subset_lengths(batch: Batch, m: str, sel: torch.Tensor) -> Batch | None:
    lengths = (batch.get("lengths") or {}).get(m)
    return {"lengths": {m: lengths[sel]}} if lengths is not None else None
