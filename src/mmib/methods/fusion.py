"""Supervised fusion baselines with the library's shared encoders (OMIB spec §8, IBMA spec §7):

=========  ======================================================================================================
name       model and loss
=========  ======================================================================================================
concat     late/concat fusion: ``[f_1(v_1); …; f_M(v_M)] → head``; task loss only
film       FiLM (Perez et al. 2018; OGM-GE ``FiLM``): γ, b from the other modalities modulate one → head
bigated    BiGated (Kiela et al. 2018; OGM-GE ``GatedFusion`` in both directions) → head
vib        deep multi-view IB (Wang et al. 2019): per-modality Gaussian q(z_m|v_m), ``concat(z_m) → head``;
           task + β Σ_m KL_m
emib       E-MIB (Mai et al. 2023): ``concat(f) → Linear → ReLU → VIB → z → head``; task + β KL(z)
lmib       L-MIB: per modality VIB → z_m with a unimodal head (task_m + β KL_m); ``concat(z_m) → Linear → head``
           with a task-only loss
cmib       C-MIB: L-MIB plus a VIB on the fused representation (+ β KL_fused)
=========  ======================================================================================================

All share :class:`SupervisedFusionMethod`: tasks classification (cross-entropy), regression (MSE), and the SVDD
variant for unlabelled one-class data (squared distance to a centre fixed from an initial forward pass, Deep SVDD).
Inference is deterministic (z = μ). Prediction on a subset of modalities fills a missing modality with zeros:
the prior mean for Gaussian latents; for the deterministic fusions (concat, FiLM, BiGated) a zero feature vector
(a crude choice, documented in ``docs/methods/fusion-baselines.md``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from mmib.data.dataset import Batch
from mmib.data.spec import DatasetSpec
from mmib.errors import MMIBError
from mmib.methods.base import SPACES, Method
from mmib.methods.fusion_options import (
    BiGatedOptions,
    CMIBOptions,
    ConcatOptions,
    EMIBOptions,
    FiLMOptions,
    LMIBOptions,
    SupervisedFusionOptions,
    VIBOptions,
)
from mmib.methods.registry import register_method
from mmib.nn.fusion import BiGatedFusion, ConcatFusion, FiLMFusion, GaussianEncoder
from mmib.nn.heads import MLP
from mmib.objectives.base import LossOutput
from mmib.objectives.vib import gaussian_kl_standard, task_nll


class SVDDHead(nn.Sequential):
    """Bias-free MLP (Deep SVDD, Ruff et al. 2018: no bias terms, so that the trivial constant solution is avoided);
    OMIB App. H: ``input × 256 × 256`` with LeakyReLU."""

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = (256,), slope: float = 0.01):
        layers: list[nn.Module] = []
        d = in_dim
        for h in hidden:
            layers += [nn.Linear(d, h, bias=False), nn.LeakyReLU(slope)]
            d = h
        layers.append(nn.Linear(d, out_dim, bias=False))
        super().__init__(*layers)


def svdd_center(outputs: torch.Tensor, eps: float = 0.1) -> torch.Tensor:
    """The mean output, with coordinates closer to 0 than ``eps`` pushed to ±eps (Ruff et al. 2018)."""
    c = outputs.detach().mean(0)
    c[(c.abs() < eps) & (c < 0)] = -eps
    c[(c.abs() < eps) & (c >= 0)] = eps
    return c


class SupervisedFusionMethod(Method):
    """Shared parts: task detection, heads, task loss, SVDD centres, complete-row selection, ``predict``. Its options
    (:class:`~mmib.methods.fusion_options.SupervisedFusionOptions`) are part of every subclass's."""

    supervised = True
    Options = SupervisedFusionOptions
    min_modalities = 1
    #: whether this class is the SVDD (one-class, unlabelled) variant
    svdd: bool = False

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        o = self.opts
        if self.svdd:
            self.task = "svdd"
            self.out_dim = o.svdd_dim
        elif spec.task == "classification":
            self.task, self.out_dim = "classification", int(spec.n_classes)
        elif spec.task == "regression":
            self.task, self.out_dim = "regression", int(spec.target_dim)
        else:
            raise MMIBError(f"method '{self.name}': data set '{spec.name}' has task '{spec.task}'; use the SVDD "
                            f"variant for unlabelled one-class data")
        self.rep_dim = o.representation_dim
        self.head_hidden = list(o.head_hidden)
        self.head_act = o.head_act
        self.mods = spec.modality_names
        self.n_mod = len(self.mods)
        self.encoders = self.build_encoders(self.rep_dim)
        self._centers: dict[str, str] = {}

    # ---- helpers
    def make_head(self, in_dim: int) -> nn.Module:
        if self.task == "svdd":
            return SVDDHead(in_dim, self.out_dim, self.head_hidden or [256])
        return MLP(in_dim, self.out_dim, self.head_hidden, act=self.head_act)

    def register_center(self, head_name: str) -> None:
        """An SVDD centre buffer for the head ``head_name`` (set by :meth:`init_centers`)."""
        buf = f"center_{head_name}"
        self.register_buffer(buf, torch.zeros(self.out_dim))
        self._centers[head_name] = buf

    def center(self, head_name: str) -> torch.Tensor | None:
        return getattr(self, self._centers[head_name]) if self.task == "svdd" else None

    def task_loss(self, output: torch.Tensor, batch: Batch, head_name: str = "fused") -> torch.Tensor:
        """Per-sample task loss (N,)."""
        y = None if self.task == "svdd" else batch.get("y")
        if self.task != "svdd" and y is None:
            raise MMIBError(f"method '{self.name}' is supervised: the batch has no labels 'y'")
        return task_nll(output, y, self.task, self.center(head_name) if self.task == "svdd" else None)

    def encode(self, batch: Batch, mods: Sequence[str]) -> dict[str, torch.Tensor]:
        return {m: self.encoders[m](batch["x"][m], self.lengths_of(batch, m)) for m in mods}

    def complete_rows(self, batch: Batch, modalities: Sequence[str] | None = None) -> Batch:
        """Training uses the samples that have every modality (presence mask)."""
        return super().complete_rows(batch, self.mods if modalities is None else modalities)

    def _check_space(self, space: str) -> None:
        if space not in SPACES:
            raise MMIBError(f"unknown representation space '{space}'; valid: {', '.join(SPACES)}")

    # ---- SVDD centres: one forward pass over the training data before training (Ruff et al. 2018)
    def head_outputs(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Deterministic outputs of every head with a centre (SVDD); subclasses override."""
        return {"fused": self.predict(batch)}

    @torch.no_grad()
    def init_centers(self, train_batch: Batch, chunk: int = 4096) -> None:
        if self.task != "svdd":
            return
        was = self.training
        self.eval()
        n = int(next(iter(train_batch["x"].values())).shape[0])
        outs: dict[str, list[torch.Tensor]] = {}
        for s in range(0, n, chunk):
            sub = _slice_batch(train_batch, slice(s, s + chunk), self.device)
            for k, v in self.head_outputs(sub).items():
                outs.setdefault(k, []).append(v)
        for k, v in outs.items():
            getattr(self, self._centers[k]).copy_(svdd_center(torch.cat(v)))
        self.train(was)

    def on_fit_start(self) -> None:
        if self.task == "svdd" and not bool(getattr(self, "centers_ready", torch.tensor(False))):
            dm = getattr(self.trainer, "datamodule", None)
            if dm is None or not hasattr(dm, "split_batch"):
                raise MMIBError(f"method '{self.name}' (SVDD) needs an mmib data module to set its centres")
            self.init_centers(dm.split_batch("train"))
            self.centers_ready.fill_(True)


def _slice_batch(batch: Batch, sl: slice, device: torch.device) -> Batch:
    out: Batch = {}
    for k, v in batch.items():
        if isinstance(v, dict):
            out[k] = {m: t[sl].to(device) for m, t in v.items()}
        elif isinstance(v, torch.Tensor):
            out[k] = v[sl].to(device)
    return out


# ----------------------------------------------------------------------------------------- deterministic fusions
class DeterministicFusion(SupervisedFusionMethod):
    """Encoders → a fusion module → head; task loss only."""

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        self.fusion, fused_dim = self.build_fusion()
        self.head = self.make_head(fused_dim)
        self.register_center("fused")
        self.register_buffer("centers_ready", torch.tensor(False))

    def build_fusion(self) -> tuple[nn.Module, int]:
        raise NotImplementedError

    def fuse(self, batch: Batch, modalities: Sequence[str] | None = None) -> torch.Tensor:
        mods = self.modalities_of(batch, modalities)
        f = self.encode(batch, mods)
        return self.fusion([f.get(m) for m in self.mods])

    def predict(self, batch: Batch, modalities: Sequence[str] | None = None) -> torch.Tensor:
        out = self.head(self.fuse(batch, modalities))
        if self.task == "svdd":
            return (out - self.center("fused")).pow(2).sum(1, keepdim=True)
        return out

    def head_outputs(self, batch: Batch) -> dict[str, torch.Tensor]:
        return {"fused": self.head(self.fuse(batch))}

    def embed(self, batch: Batch, modalities: Sequence[str] | None = None, space: str = "representation") -> dict[str, torch.Tensor]:
        self._check_space(space)
        return self.encode(batch, self.modalities_of(batch, modalities))

    def loss(self, batch: Batch) -> LossOutput:
        self.modalities_of(batch, self.mods)
        batch = self.complete_rows(batch)
        out = self.head(self.fuse(batch, self.mods))
        nll = self.task_loss(out, batch).mean()
        return LossOutput(nll, {"task": nll.detach()})


@register_method("concat")
class ConcatMethod(DeterministicFusion):
    """Late/concat fusion: ``[f_1; …; f_M] → head`` (the fused representation is the concatenation)."""

    name = "concat"
    Options = ConcatOptions

    def build_fusion(self):
        return _Concat(), self.rep_dim * self.n_mod


class _Concat(nn.Module):
    def forward(self, xs):
        ref = next(x for x in xs if x is not None)
        return torch.cat([x if x is not None else torch.zeros_like(ref) for x in xs], dim=1)


@register_method("film")
class FiLMMethod(DeterministicFusion):
    """FiLM fusion: the other modalities condition ``film_target`` (default: the last modality)."""

    name = "film"
    min_modalities = 2
    Options = FiLMOptions

    def build_fusion(self):
        tgt = self.opts.film_target
        idx = -1 if tgt is None else (self.mods.index(tgt) if tgt in self.mods else None)
        if idx is None:
            raise MMIBError(f"method.film_target '{tgt}' is not a modality of '{self.spec.name}' ({self.mods})")
        d = self.opts.fused_dim
        return FiLMFusion(self.rep_dim, self.n_mod, d, idx), d


@register_method("bigated")
class BiGatedMethod(DeterministicFusion):
    """BiGated fusion: every modality gated by the others, concatenated."""

    name = "bigated"
    min_modalities = 2
    Options = BiGatedOptions

    def build_fusion(self):
        d = self.opts.fused_dim
        return BiGatedFusion(self.rep_dim, self.n_mod, d), d


# ----------------------------------------------------------------------------------------- variational (MIB) family
class VariationalFusion(SupervisedFusionMethod):
    """Shared parts of the VIB / MIB baselines: Gaussian encoders and the KL."""

    Options = VIBOptions

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        o = self.opts
        self.latent_dim, self.vae_hidden, self.sigma = o.latent_dim, o.vae_hidden, o.sigma
        self.beta, self.kl_reduction = o.beta, o.kl_reduction
        self.register_buffer("centers_ready", torch.tensor(False))

    def gaussian(self, in_dim: int) -> GaussianEncoder:
        return GaussianEncoder(in_dim, self.latent_dim, self.vae_hidden, sigma=self.sigma)

    def kl(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return gaussian_kl_standard(mu, logvar, self.kl_reduction)

    def latent(self, enc: GaussianEncoder, h: torch.Tensor, sample: bool):
        mu, logvar = enc(h)
        return (enc.sample(mu, logvar) if sample else mu), mu, logvar

    def predict(self, batch: Batch, modalities: Sequence[str] | None = None) -> torch.Tensor:
        out = self.forward_all(batch, self.modalities_of(batch, modalities), sample=False)["fused_out"]
        if self.task == "svdd":
            return (out - self.center("fused")).pow(2).sum(1, keepdim=True)
        return out

    def fuse(self, batch: Batch, modalities: Sequence[str] | None = None) -> torch.Tensor:
        return self.forward_all(batch, self.modalities_of(batch, modalities), sample=False)["fused"]

    def head_outputs(self, batch: Batch) -> dict[str, torch.Tensor]:
        o = self.forward_all(batch, self.mods, sample=False)
        return {k[len("out:"):]: v for k, v in o.items() if k.startswith("out:")} | {"fused": o["fused_out"]}

    def forward_all(self, batch: Batch, mods: Sequence[str], sample: bool) -> dict[str, Any]:
        raise NotImplementedError

    def embed(self, batch, modalities=None, space="representation"):
        """``representation``: the encoder outputs; ``embedding``: the means of the per-modality Gaussian encoders
        ``vaes`` (VIB, L-MIB, C-MIB; E-MIB, which has one encoder on the fused input, overrides this)."""
        self._check_space(space)
        mods = self.modalities_of(batch, modalities)
        f = self.encode(batch, mods)
        return f if space == "representation" else {m: self.vaes[m](f[m])[0] for m in mods}


@register_method("vib")
class VIBMethod(VariationalFusion):
    """Deep multi-view IB (Wang et al. 2019): per-modality Gaussian latents, ``concat(z_m) → head``,
    task + β Σ_m KL_m (β fixed by hand)."""

    name = "vib"

    def __init__(self, spec, cfg, encoder_cfg=None):
        super().__init__(spec, cfg, encoder_cfg)
        self.vaes = nn.ModuleDict({m: self.gaussian(self.rep_dim) for m in self.mods})
        self.head = self.make_head(self.latent_dim * self.n_mod)
        self.register_center("fused")

    def forward_all(self, batch, mods, sample):
        f = self.encode(batch, mods)
        lat = {m: self.latent(self.vaes[m], f[m], sample) for m in mods}
        z = [lat[m][0] if m in lat else None for m in self.mods]
        ref = next(t for t in z if t is not None)
        fused = torch.cat([t if t is not None else torch.zeros_like(ref) for t in z], dim=1)
        return {"fused": fused, "fused_out": self.head(fused), "lat": lat, "features": f}

    def loss(self, batch):
        self.modalities_of(batch, self.mods)
        batch = self.complete_rows(batch)
        o = self.forward_all(batch, self.mods, sample=True)
        nll = self.task_loss(o["fused_out"], batch)
        kls = {m: self.kl(mu, lv) for m, (_, mu, lv) in o["lat"].items()}
        loss = (nll + self.beta * sum(kls.values())).mean()
        terms = {"task": nll.mean().detach(), **{f"kl_{m}": v.mean().detach() for m, v in kls.items()}}
        return LossOutput(loss, terms)


@register_method("emib")
class EMIBMethod(VariationalFusion):
    """E-MIB (Mai et al. 2023): ``concat(f) → Linear → ReLU → VIB → z → head``; task + β KL(z)."""

    name = "emib"
    Options = EMIBOptions

    def __init__(self, spec, cfg, encoder_cfg=None):
        super().__init__(spec, cfg, encoder_cfg)
        fd = self.opts.fused_dim
        self.fusion = ConcatFusion([self.rep_dim] * self.n_mod, fd)
        self.vae = self.gaussian(fd)
        self.head = self.make_head(self.latent_dim)
        self.register_center("fused")

    def forward_all(self, batch, mods, sample):
        f = self.encode(batch, mods)
        h = torch.relu(self.fusion([f.get(m) for m in self.mods]))
        z, mu, lv = self.latent(self.vae, h, sample)
        return {"fused": z, "fused_out": self.head(z), "mu": mu, "logvar": lv}

    def embed(self, batch, modalities=None, space="representation"):
        self._check_space(space)
        return self.encode(batch, self.modalities_of(batch, modalities))

    def loss(self, batch):
        self.modalities_of(batch, self.mods)
        batch = self.complete_rows(batch)
        o = self.forward_all(batch, self.mods, sample=True)
        nll = self.task_loss(o["fused_out"], batch)
        kl = self.kl(o["mu"], o["logvar"])
        return LossOutput((nll + self.beta * kl).mean(), {"task": nll.mean().detach(), "kl": kl.mean().detach()})


@register_method("lmib")
class LMIBMethod(VariationalFusion):
    """L-MIB (Mai et al. 2023): per-modality VIB with a unimodal head (task_m + β KL_m), then
    ``concat(z_m) → Linear → head`` trained with the task loss; total = Σ_m (task_m + β KL_m) + task_fused."""

    name = "lmib"
    Options = LMIBOptions
    fused_ib = False

    def __init__(self, spec, cfg, encoder_cfg=None):
        super().__init__(spec, cfg, encoder_cfg)
        fd = self.opts.fused_dim
        self.vaes = nn.ModuleDict({m: self.gaussian(self.rep_dim) for m in self.mods})
        self.unimodal_heads = nn.ModuleDict({m: self.make_head(self.latent_dim) for m in self.mods})
        self.fusion = ConcatFusion([self.latent_dim] * self.n_mod, fd)
        if self.fused_ib:
            self.fused_vae = self.gaussian(fd)
            self.head = self.make_head(self.latent_dim)
        else:
            self.head = self.make_head(fd)
        for m in self.mods:
            self.register_center(f"uni_{m}")
        self.register_center("fused")

    def forward_all(self, batch, mods, sample):
        f = self.encode(batch, mods)
        lat = {m: self.latent(self.vaes[m], f[m], sample) for m in mods}
        h = self.fusion([lat[m][0] if m in lat else None for m in self.mods])
        out: dict[str, Any] = {"lat": lat}
        for m in mods:
            out[f"out:uni_{m}"] = self.unimodal_heads[m](lat[m][0])
        if self.fused_ib:
            z, mu, lv = self.latent(self.fused_vae, h, sample)
            out.update(fused=z, fused_mu=mu, fused_logvar=lv)
        else:
            out["fused"] = h
        out["fused_out"] = self.head(out["fused"])
        return out

    def loss(self, batch):
        self.modalities_of(batch, self.mods)
        batch = self.complete_rows(batch)
        o = self.forward_all(batch, self.mods, sample=True)
        terms: dict[str, torch.Tensor] = {}
        total = self.task_loss(o["fused_out"], batch)
        terms["task_fused"] = total.mean().detach()
        for m, (_, mu, lv) in o["lat"].items():
            t = self.task_loss(o[f"out:uni_{m}"], batch, f"uni_{m}")
            kl = self.kl(mu, lv)
            total = total + t + self.beta * kl
            terms[f"task_{m}"], terms[f"kl_{m}"] = t.mean().detach(), kl.mean().detach()
        if self.fused_ib:
            kl = self.kl(o["fused_mu"], o["fused_logvar"])
            total = total + self.beta * kl
            terms["kl_fused"] = kl.mean().detach()
        return LossOutput(total.mean(), terms)


@register_method("cmib")
class CMIBMethod(LMIBMethod):
    """C-MIB (Mai et al. 2023): L-MIB plus a VIB on the fused representation (+ β KL_fused)."""

    name = "cmib"
    Options = CMIBOptions
    fused_ib = True


# the earlier class name (before each registered name had a class named after it)
DeepVIBMethod = VIBMethod
