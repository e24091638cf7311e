"""OMIB — Optimal Multimodal Information Bottleneck (Wu, Shao, Wang, Sun, ICML 2025; spec ``specs/omib.md``).

Two phases inside one Lightning run (epochs ``< warmup_epochs`` are the warm-up):

1. **Warm-up** (Alg. 1): per modality an encoder ``z_i = Enc_i(v_i)`` and a task-relevance branch (TRB)
   ``Dec_i([z_i, e_i])`` with fresh noise ``e_i ~ N(0, I_k)``; loss Σ_i L_TRB_i (eq. 4).
2. **Main** (Alg. 2): at its start H(v_i) and I(v_i; v_j) are estimated with MINE on the training data (unless
   given), ``[M_l, M_u]`` follows (Prop. 5.7 / App. D) and β is sampled from it once (or set by ``beta``); the
   optimiser state is reset. Per batch: VAE_i → (μ_i, σ_i), ζ_i = μ_i + σ_i ε_i, ξ = CAN(ζ_1..ζ_M),
   ŷ = Dec_hat(ξ), ŷ_i = Dec_i([z_i, ξ]); r_m = 1 − tanh(ln R_m) per batch without gradient (eq. 11, eq. 68 with
   modality 1 as the reference); ``L = L_OMF + Σ_i L_TRB_i`` with
   ``L_OMF = mean[−log q(y|ξ) + β(KL_1 + Σ_m r_m KL_m)]`` (eqs. 10, 67); one joint backward (Alg. 2 line 22–23;
   ``detach_z_for_omf`` / ``detach_xi_for_trb`` give the §4-text reading).

Inference (§4): ``Enc_i → VAE_i (ζ_i = μ_i) → CAN → Dec_hat``; no TRB is called. A missing modality is a zero token
(the prior mean of ζ). Tasks: classification (CE), regression (MSE; r from squared distances) and, as method
``omib_svdd``, the one-class SVDD variant (App. H eq. 104, centres fixed from an initial forward pass).

Ablations (Table 6, ``ablation``): ``no_warmup``; ``concat_fusion`` (CAN → Linear(concat ζ)); ``no_omf`` (no VAE,
KL or CAN: ξ = Linear(concat z), task loss + TRBs); ``no_r`` (r ≡ 1). Decisions: ``docs/methods/omib.md``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from mmib.data.dataset import Batch
from mmib.data.spec import DatasetSpec
from mmib.errors import MMIBError
from mmib.info.omib_information import InformationEstimates, estimate_information, mine_cache_path
from mmib.methods.fusion import SupervisedFusionMethod, _slice_batch, svdd_center
from mmib.methods.fusion_options import SupervisedFusionOptions, check_kl_reduction
from mmib.methods.options import OptimOptions, optim_field, options_dict
from mmib.methods.registry import register_method
from mmib.nn.fusion import ConcatFusion, CrossAttentionFusion, GaussianEncoder
from mmib.objectives.base import LossOutput
from mmib.objectives.omib import R_MODES, OMFLoss, dynamic_weight, sample_beta
from mmib.objectives.vib import gaussian_kl_standard
from mmib.utils.cache import read_json, write_json


class OMIBAblation(str, enum.Enum):
    """``method.ablation`` (Table 6), read once in ``__init__`` into the flags the method checks."""

    NONE = "none"
    NO_WARMUP = "no_warmup"  # no warm-up phase
    CONCAT_FUSION = "concat_fusion"  # CAN -> Linear(concat zeta)
    NO_OMF = "no_omf"  # no VAE, KL or CAN: xi = Linear(concat z), task loss + TRBs
    NO_R = "no_r"  # r = 1

    def __str__(self) -> str:  # the config word, on every Python version
        return self.value


ABLATIONS = tuple(a.value for a in OMIBAblation)


@dataclass(frozen=True)
class MINEOptions:
    """``method.mine``: the MINE estimates of H(v_i) and I(v_i; v_j) at the start of the main phase."""

    steps: int = 2000
    batch_size: int = 256
    lr: float = 1.0e-4
    hidden_dim: int = 256
    max_samples: int = 10000
    seed: int = 0
    cache: bool = True


@dataclass(frozen=True)
class OMIBOptions(SupervisedFusionOptions):
    """``conf/method/omib.yaml`` (and ``omib_svdd.yaml``); ``docs/methods/omib.md`` explains each key."""

    latent_dim: int | None = None  # k (null = representation_dim)
    vae_hidden: int = 256
    vae_act: str = "relu"
    sigma: str = "softplus"  # softplus(h-5) | logvar
    fusion: str = "attention"  # attention (CAN) | concat
    can_heads: int = 4
    can_residual_norm: bool = True
    can_mode: str = "self"  # self | cross
    warmup_epochs: int = 20
    beta: float | None = None  # null: sampled from [M_l, M_u]; a number: fixed
    beta_sampling: str = "log"  # log | linear
    beta_seed: int | None = None
    estimate_bounds: bool = False  # with a fixed beta: still estimate [M_l, M_u]
    information: dict[str, Any] | None = None  # precomputed {entropies, mutual_informations} (nats)
    mine: MINEOptions = field(default_factory=MINEOptions)
    kl_reduction: str = "sum"  # sum (true KL) | mean (Mai et al.)
    r_mode: str = "mean_of_ratios"  # mean_of_ratios | ratio_of_means
    r_eps: float = 1.0e-8
    r_fixed: float | None = None
    detach_z_for_omf: bool = False
    detach_xi_for_trb: bool = False
    trb_weight: float = 1.0
    reset_optimizer_at_main: bool = True
    ablation: OMIBAblation = OMIBAblation.NONE
    svdd_dim: int = 256  # output size of the SVDD heads (omib_svdd)
    optim: OptimOptions = optim_field(name="adam", lr=1.0e-4, weight_decay=0.0)


def parse_information(d: Mapping[str, Any], n_modalities: int) -> InformationEstimates:
    """``{"entropies": [H_1, …], "mutual_informations": {"0,1": I_01, …}}`` (or a list ``[[0, 1, I_01], …]``, e.g.
    on the command line) → :class:`InformationEstimates`."""
    if "entropies" not in d or "mutual_informations" not in d:
        raise MMIBError("method.information needs 'entropies' (one per modality) and 'mutual_informations' "
                        "({'0,1': value, ...})")
    ent = [float(v) for v in d["entropies"]]
    if len(ent) != n_modalities:
        raise MMIBError(f"method.information.entropies has {len(ent)} values for {n_modalities} modalities")
    raw = d["mutual_informations"]
    items = ([((t[0], t[1]), t[2]) for t in raw] if isinstance(raw, (list, tuple))
             else [(tuple(str(k).replace("(", "").replace(")", "").split(",")), v) for k, v in dict(raw).items()])
    mi = {}
    for (i, j), v in items:
        i, j = int(i), int(j)
        mi[(min(i, j), max(i, j))] = float(v)
    try:
        return InformationEstimates(ent, mi, dict(d.get("settings") or {"source": "config"}))
    except ValueError as e:
        raise MMIBError(f"method.information: {e}") from None


@register_method("omib")
class OMIBMethod(SupervisedFusionMethod):
    """OMIB; see the module docstring and ``docs/methods/omib.md``."""

    name = "omib"
    min_modalities = 2
    Options = OMIBOptions

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        o = self.opts
        self.ablation = o.ablation
        #: the ablation, read once: the OMF block (VAEs, KL, CAN) is used unless ablation no_omf
        self.uses_omf = o.ablation is not OMIBAblation.NO_OMF
        d = self.rep_dim
        self.latent_dim = k = o.latent_dim or d
        self.warmup_epochs = 0 if o.ablation is OMIBAblation.NO_WARMUP else o.warmup_epochs
        if self.warmup_epochs < 0 or k < 1:
            raise MMIBError("method: warmup_epochs must be >= 0 and latent_dim >= 1")
        self.r_mode = o.r_mode
        if self.r_mode not in R_MODES:
            raise MMIBError(f"method.r_mode must be one of {', '.join(R_MODES)}, got {self.r_mode!r}")
        self.r_eps = o.r_eps
        self.r_fixed = 1.0 if o.ablation is OMIBAblation.NO_R else o.r_fixed
        self.kl_reduction = check_kl_reduction(o.kl_reduction)
        self.detach_z_for_omf, self.detach_xi_for_trb = o.detach_z_for_omf, o.detach_xi_for_trb
        self.trb_weight = o.trb_weight
        if not (math.isfinite(self.trb_weight) and self.trb_weight >= 0):
            raise MMIBError(f"method.trb_weight must be a finite number >= 0, got {o.trb_weight!r}")
        self.beta_sampling = o.beta_sampling
        if self.beta_sampling not in ("log", "linear"):
            raise MMIBError(f"method.beta_sampling must be 'log' or 'linear', got {self.beta_sampling!r}")
        self.beta_fixed = o.beta
        if self.beta_fixed is not None and not (math.isfinite(self.beta_fixed) and self.beta_fixed >= 0):
            raise MMIBError(f"method.beta must be a finite number >= 0 or null (sample from [M_l, M_u]), got {o.beta}")
        self.information_cfg = o.information
        if self.information_cfg is not None:
            parse_information(self.information_cfg, self.n_mod)  # validate early
        self.mine_cfg = options_dict(o.mine)
        self.reset_optimizer_at_main = o.reset_optimizer_at_main
        fusion = "concat" if o.ablation is OMIBAblation.CONCAT_FUSION else o.fusion
        if fusion not in ("attention", "concat"):
            raise MMIBError(f"method.fusion must be 'attention' or 'concat', got {fusion!r}")
        self.fusion_kind = fusion

        self.trb_heads = nn.ModuleDict({m: self.make_head(d + k) for m in self.mods})
        if not self.uses_omf:
            self.vaes = nn.ModuleDict()
            self.can = ConcatFusion([d] * self.n_mod, k)
        else:
            self.vaes = nn.ModuleDict({m: GaussianEncoder(d, k, o.vae_hidden, act=o.vae_act, sigma=o.sigma)
                                       for m in self.mods})
            if fusion == "attention":
                self.can = CrossAttentionFusion(k, self.n_mod, o.can_heads, o.can_residual_norm, o.can_mode)
            else:
                self.can = ConcatFusion([k] * self.n_mod, k)
        self.fused_head = self.make_head(k)
        for m in self.mods:
            self.register_center(f"trb_{m}")
        self.register_center("fused")
        self.register_buffer("centers_ready", torch.tensor(False))
        self.register_buffer("main_started", torch.tensor(False))
        self.register_buffer("beta", torch.tensor(float("nan"), dtype=torch.float64))
        self.register_buffer("beta_lower", torch.tensor(float("nan"), dtype=torch.float64))
        self.register_buffer("beta_upper", torch.tensor(float("nan"), dtype=torch.float64))
        #: (epoch, global step, r_1..r_{M-1}, R_1..R_{M-1}) of every main-phase training batch (claim 11)
        self.r_history: list[tuple] = []
        self.information: InformationEstimates | None = None

    # ------------------------------------------------------------------ phases
    def phase(self, epoch: int | None = None) -> str:
        e = self.current_epoch if epoch is None else epoch
        return "warmup" if e < self.warmup_epochs else "main"

    def on_fit_start(self) -> None:
        max_epochs = getattr(self.trainer, "max_epochs", None)
        if max_epochs is not None and 0 <= max_epochs <= self.warmup_epochs:
            raise MMIBError(f"method '{self.name}': trainer.max_epochs ({max_epochs}) must exceed warmup_epochs "
                            f"({self.warmup_epochs}); otherwise the OMF block is never trained")
        if self.task == "svdd" and not bool(self.centers_ready):
            self.init_trb_centers(self._train_batch())
        if self.warmup_epochs == 0 and not bool(self.main_started):
            # no warm-up (ablation no_warmup): the main phase starts now, before Lightning's validation sanity
            # check evaluates the main-phase loss (a resumed run has main_started restored from its checkpoint)
            self._start_main_from_data()

    def on_train_epoch_start(self) -> None:
        if self.phase() == "main" and not bool(self.main_started):
            self._start_main_from_data()
            if self.reset_optimizer_at_main and self.warmup_epochs > 0:
                for opt in self.trainer.optimizers:
                    opt.state.clear()  # a new optimiser for the main phase (spec §6.2)

    def _start_main_from_data(self) -> None:
        needs_data = self.information_cfg is None and (self.beta_fixed is None or self.opts.estimate_bounds)
        self.start_main(self._train_batch() if (needs_data or self.task == "svdd") else None)

    def _train_batch(self) -> Batch:
        dm = getattr(self.trainer, "datamodule", None)
        if dm is None or not hasattr(dm, "split_batch"):
            raise MMIBError(f"method '{self.name}' needs an mmib data module (MINE estimates / SVDD centres use the "
                            "training split)")
        return dm.split_batch("train")

    @torch.no_grad()
    def estimate_bounds(self, train_batch: Batch) -> InformationEstimates:
        """MINE estimates of H(v_m) and I(v_i; v_j) on the raw (standardised, flattened) training inputs."""
        mc = self.mine_cfg
        n = int(next(iter(train_batch["x"].values())).shape[0])
        g = torch.Generator().manual_seed(int(mc["seed"]))
        idx = torch.randperm(n, generator=g)[: int(mc["max_samples"])]
        views = [train_batch["x"][m][idx].reshape(len(idx), -1).float().cpu() for m in self.mods]
        settings = {k: mc[k] for k in ("steps", "batch_size", "lr", "hidden_dim", "seed")}
        path = mine_cache_path(views, settings) if mc["cache"] else None
        cached = read_json(path) if path is not None else None
        if cached is not None:
            info = parse_information(cached, self.n_mod)  # InformationEstimates.to_dict format
            info.settings["cached"] = str(path)
            return info
        with torch.enable_grad(), torch.inference_mode(False):
            info = estimate_information(views, steps=int(mc["steps"]), batch_size=int(mc["batch_size"]),
                                        lr=float(mc["lr"]), hidden_dim=int(mc["hidden_dim"]), seed=int(mc["seed"]))
        if path is not None:
            write_json(path, info.to_dict())
        return info

    def start_main(self, train_batch: Batch | None = None) -> float:
        """Alg. 2 lines 1–5: bounds and β (and the SVDD centre of Dec_hat). Returns β."""
        info = None
        if self.information_cfg is not None:
            info = parse_information(self.information_cfg, self.n_mod)
        elif self.beta_fixed is None or self.opts.estimate_bounds:
            if train_batch is None:
                raise MMIBError(f"method '{self.name}': estimating the β bounds needs the training data")
            info = self.estimate_bounds(train_batch)
        self.information = info
        if info is not None:
            self.beta_lower.fill_(info.lower)
            self.beta_upper.fill_(info.upper)
        if self.beta_fixed is not None:
            beta = self.beta_fixed
        else:
            seed = self.opts.beta_seed
            g = torch.Generator().manual_seed(int(seed) if seed is not None else int(torch.randint(2**31 - 1, ())))
            beta = sample_beta(info.lower, info.upper, g, self.beta_sampling)
        self.beta.fill_(beta)
        if self.task == "svdd":
            if train_batch is None:
                raise MMIBError(f"method '{self.name}' (SVDD): the centre of Dec_hat needs the training data")
            self.init_fused_center(train_batch)
        self.main_started.fill_(True)
        if info is not None:
            self.print_once(f"OMIB bounds: H={[f'{h:.3g}' for h in info.entropies]} I={info.mutual_informations} "
                            f"M_l={info.lower:.3g} M_u={info.upper:.3g} beta={beta:.3g}")
        return beta

    def print_once(self, msg: str) -> None:
        trainer = getattr(self, "_trainer", None)
        if trainer is not None and trainer.is_global_zero and getattr(trainer, "enable_progress_bar", False):
            print(msg)

    # ------------------------------------------------------------------ forward pieces
    def noise(self, n: int, ref: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn((n, self.latent_dim), generator=generator, dtype=ref.dtype).to(ref.device)

    def trb(self, m: str, z: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        """Dec_m([z_m, e_m or ξ])."""
        return self.trb_heads[m](torch.cat([z, second], dim=1))

    def omf(self, z: Mapping[str, torch.Tensor], sample: bool) -> dict[str, Any]:
        """VAE → ζ → CAN → ξ → Dec_hat for the modalities in ``z`` (missing ones: zero tokens)."""
        out: dict[str, Any] = {"mu": {}, "logvar": {}}
        if not self.uses_omf:
            xi = self.can([z.get(m) for m in self.mods])
        else:
            zeta = {}
            for m, zm in z.items():
                mu, lv = self.vaes[m](zm.detach() if (self.detach_z_for_omf and self.training) else zm)
                out["mu"][m], out["logvar"][m] = mu, lv
                zeta[m] = GaussianEncoder.sample(mu, lv) if sample else mu
            xi = self.can([zeta.get(m) for m in self.mods])
        out["xi"] = xi
        out["fused_out"] = self.fused_head(xi)
        return out

    # ------------------------------------------------------------------ the interface
    def loss(self, batch: Batch) -> LossOutput:
        self.modalities_of(batch, self.mods)
        batch = self.complete_rows(batch)
        z = self.encode(batch, self.mods)
        n = next(iter(z.values())).shape[0]
        terms: dict[str, torch.Tensor] = {}
        if self.phase() == "warmup":
            total = 0.0
            for m in self.mods:
                t = self.task_loss(self.trb(m, z[m], self.noise(n, z[m])), batch, f"trb_{m}").mean()
                terms[f"trb_{m}"] = t.detach()
                total = total + t
            return LossOutput(total, terms)
        if not bool(self.main_started):
            raise MMIBError(f"method '{self.name}': main phase before start_main() (β is not set)")
        o = self.omf(z, sample=True)
        xi_trb = o["xi"].detach() if self.detach_xi_for_trb else o["xi"]
        trb_out = {m: self.trb(m, z[m], xi_trb) for m in self.mods}
        trb_loss = 0.0
        for m in self.mods:
            t = self.task_loss(trb_out[m], batch, f"trb_{m}").mean()
            terms[f"trb_{m}"] = t.detach()
            trb_loss = trb_loss + t
        if not self.uses_omf:
            fused = self.task_loss(o["fused_out"], batch, "fused").mean()
            terms["task"] = fused.detach()
            return LossOutput(fused + self.trb_weight * trb_loss, terms)
        if self.r_fixed is not None:
            r = torch.full((self.n_mod - 1,), self.r_fixed, device=o["xi"].device)
            R = torch.full_like(r, float("nan"))
        else:
            outs, fused_out = [trb_out[m] for m in self.mods], o["fused_out"]
            if self.task == "svdd":
                # each head has its own SVDD centre: compare the offsets from the centres, not the raw outputs
                # (whose difference would include the fixed gap between the centres)
                outs = [t - self.center(f"trb_{m}") for t, m in zip(outs, self.mods)]
                fused_out = fused_out - self.center("fused")
            r, R = dynamic_weight(outs, fused_out, self.task, self.r_mode, self.r_eps)
        kls = [gaussian_kl_standard(o["mu"][m], o["logvar"][m], self.kl_reduction) for m in self.mods]
        omf = OMFLoss(float(self.beta), self.task)(
            o["fused_out"], None if self.task == "svdd" else batch["y"], kls, r, self.center("fused"))
        terms.update({"task": omf.terms["task"], "omf": omf.loss.detach(), "beta": self.beta.float()})
        for i, m in enumerate(self.mods):
            terms[f"kl_{m}"] = omf.terms[f"kl_{i}"]
        for i, m in enumerate(self.mods[1:]):
            terms[f"r_{m}"] = r[i].detach()
            if self.r_fixed is None:
                terms[f"R_{m}"] = R[i].detach()
        if self.training and torch.is_grad_enabled():
            self.r_history.append((int(self.current_epoch), int(self.global_step),
                                   *[float(v) for v in r], *[float(v) for v in R]))
        return LossOutput(omf.loss + self.trb_weight * trb_loss, terms)

    def fuse(self, batch: Batch, modalities: Sequence[str] | None = None) -> torch.Tensor:
        """ξ (ζ = μ) of the requested modalities; missing modalities enter the CAN as zero tokens."""
        mods = self.modalities_of(batch, modalities)
        return self.omf(self.encode(batch, mods), sample=False)["xi"]

    def predict(self, batch: Batch, modalities: Sequence[str] | None = None) -> torch.Tensor:
        """Dec_hat(ξ): logits / regression outputs; SVDD: the anomaly score ``||Dec_hat(ξ) − c||²`` (N, 1)."""
        mods = self.modalities_of(batch, modalities)
        out = self.omf(self.encode(batch, mods), sample=False)["fused_out"]
        if self.task == "svdd":
            return (out - self.center("fused")).pow(2).sum(1, keepdim=True)
        return out

    def embed(self, batch: Batch, modalities: Sequence[str] | None = None, space: str = "representation") -> dict[str, torch.Tensor]:
        """``representation``: z_m = Enc_m(v_m); ``embedding``: μ_m (VAE mean; z_m for ``no_omf``)."""
        self._check_space(space)
        mods = self.modalities_of(batch, modalities)
        z = self.encode(batch, mods)
        if space == "representation" or not self.uses_omf:
            return z
        return {m: self.vaes[m](z[m])[0] for m in mods}

    def components(self, batch: Batch, modalities: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """``xi`` (the MIB), ``z_<m>`` and ``mu_<m>``."""
        mods = self.modalities_of(batch, modalities)
        z = self.encode(batch, mods)
        o = self.omf(z, sample=False)
        out = {"xi": o["xi"], **{f"z_{m}": v for m, v in z.items()}}
        out.update({f"mu_{m}": v for m, v in o["mu"].items()})
        return out

    @torch.no_grad()
    def unimodal_predict(self, batch: Batch, modality: str, seed: int = 0) -> torch.Tensor:
        """The unimodal branch TRB_m as in warm-up: Dec_m([z_m, e_m]) with seeded noise e_m ~ N(0, I)."""
        self.modalities_of(batch, [modality])
        z = self.encoders[modality](batch["x"][modality], self.lengths_of(batch, modality))
        g = torch.Generator().manual_seed(seed)
        return self.trb(modality, z, self.noise(z.shape[0], z, g))

    # ------------------------------------------------------------------ SVDD centres
    @torch.no_grad()
    def init_trb_centers(self, train_batch: Batch, chunk: int = 4096) -> None:
        was = self.training
        self.eval()
        n = int(next(iter(train_batch["x"].values())).shape[0])
        outs: dict[str, list[torch.Tensor]] = {m: [] for m in self.mods}
        g = torch.Generator().manual_seed(0)
        for s in range(0, n, chunk):
            sub = _slice_batch(train_batch, slice(s, s + chunk), self.device)
            z = self.encode(sub, self.mods)
            for m in self.mods:
                outs[m].append(self.trb(m, z[m], self.noise(z[m].shape[0], z[m], g)))
        for m in self.mods:
            getattr(self, self._centers[f"trb_{m}"]).copy_(svdd_center(torch.cat(outs[m])))
        self.centers_ready.fill_(True)
        self.train(was)

    @torch.no_grad()
    def init_fused_center(self, train_batch: Batch, chunk: int = 4096) -> None:
        was = self.training
        self.eval()
        n = int(next(iter(train_batch["x"].values())).shape[0])
        outs = []
        for s in range(0, n, chunk):
            sub = _slice_batch(train_batch, slice(s, s + chunk), self.device)
            outs.append(self.omf(self.encode(sub, self.mods), sample=False)["fused_out"])
        self.center_fused.copy_(svdd_center(torch.cat(outs)))
        self.train(was)


@register_method("omib_svdd")
class OMIBSVDDMethod(OMIBMethod):
    """OMIB's one-class anomaly-detection variant (App. H eq. 104): every task loss is the squared distance of a
    head's output to its fixed centre; labels are not used. ``predict`` returns the anomaly score."""

    name = "omib_svdd"
    supervised = False
    svdd = True
