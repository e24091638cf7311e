"""FactorCL (Liang et al., "Factorized Contrastive Learning: Going Beyond Multi-view Redundancy", NeurIPS 2023;
spec part A): ``factorcl_sup`` (conditioning on the label) and ``factorcl_ssl`` (conditioning on augmented views,
with the paper's unique augmentation of X2 given X1).

Model (App. D.1, spec A.4): an encoder e_i per modality; for each of the six MI terms a separate 1-layer MLP head on
each encoder it involves (10 heads) and a separate concatenation critic (6 critics, in
:class:`~mmib.objectives.factorcl.FactorCLLoss`). Representations:

    ZS_i = [h_nce(z_i), h_club_cond(z_i)]          ZU_i = [h_self(z_i), h_club(z_i), h_nce_cond(z_i)]

and the downstream representation of modality i is [ZS_i, ZU_i] (``representation: encoder`` gives e_i(x_i)
instead — the OurCL ablation and what the released synthetic code returns).

Training (Algorithm 3): per batch, one step of θ (encoders, heads, InfoNCE critics) on −(objective); then
``club_steps`` (k) steps of φ (the two NCE-CLUB critics, own optimizer) on their InfoNCE loss, each on a fresh random
training batch (``club_batch: fresh``) or on the same batch (``same``). The main step does not change φ.

Defined for exactly two modalities, as in the paper: with M > 2 the quantities of Eqs. 6–9 would need a choice of
"the other modality" X_{−i} (all others jointly, or pairwise sums) and the co-information I(X1;…;XM;Y) of M > 2
variables, which the paper does not define; it raises an error instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import nn

from mmib.data.augment import UniqueAugmentation
from mmib.data.dataset import Batch, batch_to_device
from mmib.data.spec import DatasetSpec
from mmib.errors import MMIBError
from mmib.methods.base import SPACES
from mmib.methods.contrastive_baselines import AugmentedMethod, AugmentedOptions
from mmib.methods.registry import register_method
from mmib.nn.heads import MLP
from mmib.objectives.factorcl import CLUB_TERMS, FACTORCL_TERMS, FactorCLLoss

#: which modalities (0 = X1, 1 = X2) each term has a head on
TERM_HEADS = {"nce": (0, 1), "club_cond": (0, 1), "nce_self1": (0,), "nce_self2": (1,), "club": (0, 1),
              "nce_cond": (0, 1)}
SHARED_TERMS = ("nce", "club_cond")
UNIQUE_TERMS = ("self", "club", "nce_cond")  # "self" = nce_self1 for X1, nce_self2 for X2


# ---------------------------------------------------------------------------------------------- options
@dataclass(frozen=True)
class FactorCLOptimOptions:
    """``method.optim``: Adam for the encoders, heads and InfoNCE critics (``lr``) and for the NCE-CLUB critics
    (``club_lr``)."""

    lr: float = 1.0e-4
    club_lr: float = 1.0e-4
    weight_decay: float = 0.0


@dataclass(frozen=True)
class FactorCLOptions(AugmentedOptions):
    """What FactorCL-SUP and FactorCL-SSL share (``conf/method/factorcl_*.yaml``; ``docs/methods/factorcl.md``)."""

    representation_dim: int = 128  # encoder output
    head_dim: int = 128  # every head: 1-layer MLP
    head_hidden: list[int] = field(default_factory=lambda: [128])
    critic_hidden: list[int] = field(default_factory=lambda: [512, 512])  # concatenation critics
    club_steps: int = 1  # k inner steps of the CLUB critics per main step
    club_batch: str = "fresh"  # fresh (Algorithm 3) | same
    club_off_diagonal: bool = False
    representation: str = "factorized"  # factorized ([ZS_i, ZU_i]) | encoder (e_i(x_i))
    optim: FactorCLOptimOptions = field(default_factory=FactorCLOptimOptions)


@dataclass(frozen=True)
class FactorCLSupOptions(FactorCLOptions):
    condition_side: str = "both"  # label concatenated to both critic inputs (paper) | first (code)
    augment: dict[str, Any] = field(default_factory=lambda: {"default": None, "modalities": {}})  # no augmentation

    def __post_init__(self) -> None:
        if self.condition_side not in ("both", "first"):
            raise MMIBError(f"method 'factorcl_sup': condition_side must be 'both' or 'first', got "
                            f"{self.condition_side!r}")


@dataclass(frozen=True)
class UniqueAugmentOptions:
    """``method.unique_augment`` (:class:`~mmib.data.augment.UniqueAugmentation`)."""

    protect: str | list[int] | None = "cv"  # cv | auto | [feature indices] | null
    permutations: int = 19
    refresh_every: int = 10
    ridge: float = 0.1
    energy: float = 0.9
    max_rank: int = 64
    # not in the packaged YAML (a new key would change the fingerprint of every archived factorcl_ssl run)
    folds: int = field(default=5, metadata={"yaml_optional": True})
    min_r2: float = field(default=0.02, metadata={"yaml_optional": True})


@dataclass(frozen=True)
class FactorCLSSLOptions(FactorCLOptions):
    #: false: independent augmentations (FactorCL-IndAug); null: the defaults
    unique_augment: UniqueAugmentOptions | Literal[False] | None = field(default_factory=UniqueAugmentOptions)


class FactorCLBase(AugmentedMethod):
    exact_modalities = 2
    min_modalities = 2
    conditioning = ""

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        self.automatic_optimization = False
        o = self.opts
        rep, hd, head_hidden = o.representation_dim, o.head_dim, o.head_hidden
        self.encoders = self.build_encoders(rep)
        self.m1, self.m2 = spec.modality_names
        self.heads = nn.ModuleDict({
            t: nn.ModuleDict({spec.modality_names[i]: MLP(rep, hd, list(head_hidden)) for i in TERM_HEADS[t]})
            for t in FACTORCL_TERMS})
        self.club_steps = o.club_steps
        if self.club_steps < 0:
            raise MMIBError(f"method '{self.name}': club_steps must be >= 0, got {self.club_steps}")
        self.club_batch = o.club_batch
        if self.club_batch not in ("fresh", "same"):
            raise MMIBError(f"method '{self.name}': club_batch must be 'fresh' or 'same', got {self.club_batch!r}")
        self.representation = o.representation
        if self.representation not in ("factorized", "encoder"):
            raise MMIBError(f"method '{self.name}': representation must be 'factorized' or 'encoder', got "
                            f"{self.representation!r}")
        c = self.condition_dim()
        dims = {t: (hd, hd) for t in FACTORCL_TERMS}
        dims["nce_self1"] = dims["nce_self2"] = (hd, c)
        side = self.condition_side()
        for t in ("club_cond", "nce_cond"):
            dims[t] = (hd + c, hd + (c if side == "both" else 0))
        self.objective = FactorCLLoss(dims, critic_hidden=list(o.critic_hidden), club_off_diagonal=o.club_off_diagonal)
        self._club_updates = 0
        self._main_updates = 0

    # -- conditioning: subclasses
    def condition_dim(self) -> int:
        raise NotImplementedError

    def condition_side(self) -> str:
        return "both"

    def critic_inputs(self, batch: Batch, terms: Sequence[str] = tuple(FACTORCL_TERMS)) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        raise NotImplementedError

    # -- pieces
    def encode(self, x: Mapping[str, torch.Tensor], batch: Batch) -> dict[str, torch.Tensor]:
        return {m: self.encoders[m](x[m], self.lengths_of(batch, m)) for m in (self.m1, self.m2)}

    def head(self, term: str, m: str, z: torch.Tensor) -> torch.Tensor:
        return self.heads[term][m](z)

    def _self_term(self, m: str) -> str:
        return "nce_self1" if m == self.m1 else "nce_self2"

    def factors(self, batch: Batch, modalities: Sequence[str] | None = None) -> dict[str, dict[str, torch.Tensor]]:
        mods = self.modalities_of(batch, modalities)
        out = {}
        for m in mods:
            z = self.encoders[m](batch["x"][m], self.lengths_of(batch, m))
            zs = torch.cat([self.head(t, m, z) for t in SHARED_TERMS], dim=1)
            zu = torch.cat([self.head(self._self_term(m), m, z), self.head("club", m, z), self.head("nce_cond", m, z)],
                           dim=1)
            out[m] = {"ZS": zs, "ZU": zu, "E": z}
        return out

    # -- the interface
    def loss(self, batch: Batch):
        mods = self.modalities_of(batch, self.spec.modality_names)
        batch = self.complete_rows(batch, mods)
        return self.objective(self.critic_inputs(batch))

    def embed(self, batch: Batch, modalities: Sequence[str] | None = None, space: str = "representation") -> dict[str, torch.Tensor]:
        if space not in SPACES:
            raise MMIBError(f"unknown representation space '{space}'; valid: {', '.join(SPACES)}")
        mods = self.modalities_of(batch, modalities)
        if space == "embedding":  # the head of the cross-modal InfoNCE term
            z = self.encode(batch["x"], batch) if set(mods) == {self.m1, self.m2} else {
                m: self.encoders[m](batch["x"][m], self.lengths_of(batch, m)) for m in mods}
            return {m: self.head("nce", m, z[m]) for m in mods}
        f = self.factors(batch, mods)
        if self.representation == "encoder":
            return {m: f[m]["E"] for m in mods}
        return {m: torch.cat([f[m]["ZS"], f[m]["ZU"]], dim=1) for m in mods}

    def components(self, batch: Batch, modalities: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        f = self.factors(batch, modalities)
        out = {}
        for m, d in f.items():
            out[f"ZS_{m}"], out[f"ZU_{m}"], out[f"E_{m}"] = d["ZS"], d["ZU"], d["E"]
        return out

    # -- alternating optimization (Algorithm 3)
    def configure_optimizers(self):
        lr, club_lr, wd = self.opts.optim.lr, self.opts.optim.club_lr, self.opts.optim.weight_decay
        club_ids = {id(p) for p in self.objective.club_parameters()}
        main = [p for p in self.parameters() if id(p) not in club_ids]
        return [torch.optim.Adam(main, lr=lr, weight_decay=wd),
                torch.optim.Adam(self.objective.club_parameters(), lr=club_lr, weight_decay=wd)]

    def _fresh_batch(self, batch: Batch) -> Batch:
        if self.club_batch == "same":
            return batch
        dm = getattr(getattr(self, "_trainer", None), "datamodule", None)
        if dm is None or not hasattr(dm, "indices"):
            return batch
        train = dm.indices["train"]
        n = min(len(train), int(next(iter(batch["x"].values())).shape[0]))
        pick = torch.randperm(len(train), generator=self.augmenter.generator)[:n]
        fresh = dm.dataset.get_batch(train[pick.numpy()])
        return batch_to_device(fresh, self.device)

    def club_step(self, batch: Batch, optimizer: torch.optim.Optimizer):
        """One φ step: the NCE-CLUB critics' InfoNCE loss on detached head outputs."""
        mods = self.modalities_of(batch, self.spec.modality_names)
        batch = self.complete_rows(batch, mods)
        with torch.no_grad():
            inputs = self.critic_inputs(batch, CLUB_TERMS)
        out = self.objective.club_critic_loss(inputs)
        optimizer.zero_grad()
        self.manual_backward(out.loss) if self._trainer is not None else out.loss.backward()
        optimizer.step()
        self._club_updates += 1
        return out

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        opt_main, opt_club = self.optimizers()
        out = self.loss(batch)
        self.check_finite(out, "training")
        opt_main.zero_grad()
        self.manual_backward(out.loss)
        opt_main.step()
        self._main_updates += 1
        n = int(next(iter(batch["x"].values())).shape[0])
        self._log_terms("train", out, n)
        for _ in range(self.club_steps):
            club = self.club_step(self._fresh_batch(batch), opt_club)
            for k, v in club.terms.items():
                self.log(f"train/{k}", v, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)
        return out.loss.detach()


@register_method("factorcl_sup")
class FactorCLSupMethod(FactorCLBase):
    """FactorCL-SUP: conditioning on the label Y (one-hot for classification, the target for regression),
    concatenated to the critic inputs (App. D.1); ``condition_side: both`` (paper) or ``first`` (code)."""

    supervised = True
    Options = FactorCLSupOptions

    @property
    def _side(self) -> str:
        return self.opts.condition_side

    def condition_dim(self) -> int:
        return int(self.spec.n_classes) if self.spec.task == "classification" else int(self.spec.target_dim)

    def condition_side(self) -> str:
        return self._side

    def condition(self, batch: Batch) -> torch.Tensor:
        if "y" not in batch:
            raise MMIBError("method 'factorcl_sup' is supervised: the batch has no labels 'y'")
        y = batch["y"]
        if self.spec.task == "classification":
            return nn.functional.one_hot(y.long(), int(self.spec.n_classes)).float()
        return y.float().reshape(y.shape[0], -1)

    def critic_inputs(self, batch, terms=tuple(FACTORCL_TERMS)):
        z = self.encode(batch["x"], batch)
        c = self.condition(batch).to(z[self.m1].dtype)
        m1, m2 = self.m1, self.m2
        out = {}
        for t in terms:
            if t in ("nce", "club"):
                out[t] = (self.head(t, m1, z[m1]), self.head(t, m2, z[m2]))
            elif t == "nce_self1":
                out[t] = (self.head(t, m1, z[m1]), c)
            elif t == "nce_self2":
                out[t] = (self.head(t, m2, z[m2]), c)
            else:  # conditional terms
                a = torch.cat([self.head(t, m1, z[m1]), c], 1)
                b = self.head(t, m2, z[m2])
                out[t] = (a, torch.cat([b, c], 1) if self._side == "both" else b)
        return out


@register_method("factorcl_ssl")
class FactorCLSSLMethod(FactorCLBase):
    """FactorCL-SSL: conditioning on augmented views X1' = t(X1), X2' = unique-augment(X2 | X1) (§3.2, Eqs. 15–18);
    the conditional critics see [h(z_i), h(z_i')] (App. D.1). ``unique_augment: false`` gives FactorCL-IndAug."""

    Options = FactorCLSSLOptions

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        u = self.opts.unique_augment
        if u is None:  # null: the defaults
            u = UniqueAugmentOptions()
        self.unique: UniqueAugmentation | None = None
        if u is not False:
            self.unique = UniqueAugmentation(self.augmenter.pipelines[self.m2], protect=u.protect, ridge=u.ridge,
                                             energy=u.energy, max_rank=u.max_rank, folds=u.folds,
                                             permutations=u.permutations, min_r2=u.min_r2,
                                             refresh_every=u.refresh_every)

    def condition_dim(self) -> int:
        return self.opts.head_dim

    def augmented_views(self, batch: Batch) -> dict[str, torch.Tensor]:
        x = batch["x"]
        lengths = batch.get("lengths") or {}
        x1p = self.augmenter.one(self.m1, x[self.m1], lengths.get(self.m1))
        if self.unique is not None:
            x2p = self.unique(x[self.m2], x[self.m1], self.augmenter.generator, lengths.get(self.m2))
        else:
            x2p = self.augmenter.one(self.m2, x[self.m2], lengths.get(self.m2))
        return {self.m1: x1p, self.m2: x2p}

    def critic_inputs(self, batch, terms=tuple(FACTORCL_TERMS)):
        z = self.encode(batch["x"], batch)
        zp = self.encode(self.augmented_views(batch), batch)
        m1, m2 = self.m1, self.m2
        out = {}
        for t in terms:
            if t in ("nce", "club"):
                out[t] = (self.head(t, m1, z[m1]), self.head(t, m2, z[m2]))
            elif t == "nce_self1":
                out[t] = (self.head(t, m1, z[m1]), self.head(t, m1, zp[m1]))
            elif t == "nce_self2":
                out[t] = (self.head(t, m2, z[m2]), self.head(t, m2, zp[m2]))
            else:  # [h(z1), h(z1')] vs [h(z2), h(z2')] (paper; the released code's CLUB uses h(z) twice)
                out[t] = (torch.cat([self.head(t, m1, z[m1]), self.head(t, m1, zp[m1])], 1),
                          torch.cat([self.head(t, m2, z[m2]), self.head(t, m2, zp[m2])], 1))
        return out


# the earlier class names (before each registered name had a class named after it)
FactorCLSup, FactorCLSSL = FactorCLSupMethod, FactorCLSSLMethod
