"""``rus``: the explicit redundancy / uniqueness / synergy model for two modalities, EEG + fNIRS (spec part C, the
"hybrid decomposition model"; spec D.5 for its checks; ``docs/methods/rus.md``).

Architecture (C.6):

* per modality a **temporal encoder** over the raw signal: a 1-D CNN over time (the encoder config's ``signal``
  encoder, cut before its pooling, :class:`~mmib.nn.fusion_transformer.TokenEncoder`) gives tokens with sine-cosine
  time positions, then a Transformer with a [CLS] token (``temporal: transformer``) or a GRU (``temporal: gru``) over
  the tokens gives H_m. Absolute timing survives (no global pooling before the temporal model), which the coupling
  delay τ needs. Vectors (hand-crafted features) go through the MLP feature tokenizer instead.
* heads (MLPs) Z_R_m = Head_R_m(H_m) and Z_U_m = Head_U_m(H_m) for each modality m;
* **fusion** for the synergy head: ``cross_attention`` (default) = a Transformer over the tokens of *both*
  modalities with a [CLS] (CoMM's :class:`~mmib.nn.fusion_transformer.FusionTransformer`), or ``concat`` =
  [H_a, H_b]; Z_S = Head_S(H_fused).

Objective (C.7, :class:`~mmib.objectives.rus.RUSLoss`): two augmented views x', x'' of both modalities;
L_R = InfoNCE(Z_R_a(x'), Z_R_b(x')); L_U = Σ_m MSE(Decoder_m(Z_U_m(x')), targets_m(x)) + λ_cross · cross-modal term
(``cross_min: neg_sim`` — the design's −log(1 − |cos(Z_U_m, P·H_other)|) with a fixed random projection P — or
``grl`` — an adversary that predicts the *other* modality's targets from Z_U_m through gradient reversal — or
``none``); L_S = InfoNCE(Z_S(x'), Z_S(x'')); L_orth = mean |cos| over the pairs of different components of x'.

Reconstruction targets ("the modality's own physiological features": ``band_power``, ``band_envelope``,
``band_envelope_peak``, ``hemodynamic``, ``input``, ``none``) are computed from the clean input of the batch and
z-scored over the batch by :mod:`mmib.data.physio.targets`. Augmentations (C.5): generic ones from
:mod:`mmib.data.augment` (``noise``, ``time_drop``, …) plus the physiological ones of :mod:`mmib.data.physio.augment`
(``time_mask``, ``channel_dropout``, ``band_snr``, ``hrf_amplitude``, ``hrf_delay``). ``hrf_delay`` is **off** by
default: it changes the EEG→fNIRS delay, the quantity Z_S should carry (spec C.9, D.5.5); ``hrf_delay_s > 0`` turns it
on, for the second view only (``hrf_delay_scope: s_view``, the default: that view feeds L_S alone) or for both views
(``both``).

Issue 20 (defaults; each has the design's literal setting as an option, ``docs/methods/rus.md``, "Variants"):
token positions in **seconds** relative to the trial marker, one clock for both modalities (``positions``,
``time_start``); a **product interaction** W_a H_a ⊙ W_b H_b in the synergy fusion (``interaction``); the synergy
objective ``unimodal_hsic`` = L_S + λ_syn Σ_m nHSIC(Z_S, H_m) (``synergy``; ``literal`` = L_S alone;
``interaction`` = Z_S is the functional-ANOVA interaction term of the synergy path g(x_a, x_b), g minus its means over
partners of either modality — K in-batch derangements in training (``synergy_partners``), a reference bank of R
training inputs saved in the checkpoint at evaluation (``synergy_bank``) — with L_S on it); the
time-resolved EEG target ``band_envelope_peak`` (the channel-mean band envelope plus each band's peak window power
over channels and windows) with λ_U = 3; the ``filterbank`` token encoder (:class:`~mmib.nn.encoders.FilterbankEncoder`:
log band power every 0.25 s) for a signal with a time-resolved band target, unless ``encoder.modalities.<m>.type``
names one (the 1-D CNN lost the 0.5 s gamma burst and the event); and, off by default, L_hsic, a normalized-HSIC
penalty between components beside L_orth (``weights.hsic``, ``hsic_pairs``).

Interface: :meth:`RUSMethod.hidden` → ``{m: H_m}``; ``embed`` → H_m (``space="embedding"``: Z_R_m, so :meth:`score` = cosine of the redundancy heads =
cross-modal retrieval); ``fuse`` → Z_S (both modalities needed); ``components`` → ``R_<m>``, ``U_<m>`` for the
requested modalities and ``S`` when both are given (with modalities ``eeg``/``fnirs``: R_eeg, R_fnirs, U_eeg,
U_fnirs, S).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from mmib.data.augment import Augmentation, make_generator
from mmib.data.dataset import Batch
from mmib.data.physio.augment import build_rus_augmentation, default_rus_augmentation
from mmib.data.physio.targets import (
    BAND_TARGETS,
    TARGETS,
    TIME_RESOLVED_TARGETS,
    reconstruction_targets,
    require_rate,
    target_dim,
)
from mmib.data.spec import DatasetSpec
from mmib.errors import MMIBError, UnknownNameError
from mmib.methods.base import SPACES, Method
from mmib.methods.registry import register_method
from mmib.methods.rus_blocks import GRUPool, default_time_start
from mmib.methods.rus_decoded import DecodedSynergy
from mmib.methods.rus_interaction import InteractionSynergy
from mmib.methods.rus_options import RUSOptions
from mmib.nn.fusion_transformer import FusionTransformer, TokenEncoder
from mmib.nn.heads import MLP
from mmib.objectives.base import LossOutput, l2_normalize
from mmib.objectives.rus import GradientReversal, RUSLoss, neg_sim_loss

HRF_DELAY_SCOPES = ("s_view", "both")


# ============================================================================================ the method
@register_method("rus")
class RUSMethod(InteractionSynergy, DecodedSynergy, Method):
    """Explicit R/U/S decomposition of two modalities (EEG + fNIRS design, spec C.4–C.7)."""

    exact_modalities = 2
    Options = RUSOptions
    opts: RUSOptions

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        o = self.opts
        for ms in spec.modalities:
            if ms.kind not in ("signal", "vector"):
                raise MMIBError(f"method 'rus': modality '{ms.name}' is a {ms.kind}; rus takes signals (C, T) or "
                                "feature vectors")
        self.mods = spec.modality_names
        d, k, heads = o.hidden_dim, o.component_dim, o.n_heads
        self.temporal_kind = o.temporal
        self.fusion_kind = o.fusion
        self.cross_min = o.cross_min
        self.positions = o.positions
        self.synergy = o.synergy
        self.syn_grad = o.syn_grad
        self.s_grad = o.s_grad
        if self.synergy == "interaction":
            self._init_interaction(spec, o)
        # reconstruction targets per modality
        tcfg = dict(o.targets)
        bad = [m for m in tcfg if m not in self.mods]
        if bad:
            raise UnknownNameError(f"modality of data set '{spec.name}' (method.targets)", bad[0], self.mods)
        self.targets: dict[str, str] = {}
        for ms in spec.modalities:
            t = tcfg.get(ms.name)
            if t is None:
                t = "input" if ms.kind == "vector" else {"eeg": "band_envelope_peak", "fnirs": "hemodynamic"}.get(ms.name)
            if t is None:
                raise MMIBError(f"method 'rus': no default reconstruction target for modality '{ms.name}'; set "
                                f"method.targets.{ms.name} to one of {', '.join(TARGETS)}")
            if t not in TARGETS:
                raise UnknownNameError(f"reconstruction target (method.targets.{ms.name})", str(t), TARGETS)
            if (t in BAND_TARGETS or t == "hemodynamic") and ms.kind != "signal":
                raise MMIBError(f"method 'rus': target '{t}' of modality '{ms.name}' needs a signal, it is a {ms.kind}")
            if t in BAND_TARGETS:
                require_rate(ms, f"target '{t}'")
            self.targets[ms.name] = t
        # time axis: signals get token positions in seconds relative to the trial marker (one clock for both)
        starts = dict(o.time_start)
        bad = [m for m in starts if m not in self.mods]
        if bad:
            raise UnknownNameError(f"modality of data set '{spec.name}' (method.time_start)", bad[0], self.mods)
        self.time_axes: dict[str, tuple[float, float] | None] = {}
        for ms in spec.modalities:
            if self.positions == "seconds" and ms.kind == "signal":
                start = starts.get(ms.name)
                try:
                    start = default_time_start(ms) if start is None else float(start)
                except (TypeError, ValueError) as e:
                    raise MMIBError(f"method 'rus': method.time_start.{ms.name} must be a number of seconds, got "
                                    f"{starts.get(ms.name)!r}") from e
                self.time_axes[ms.name] = (start, require_rate(ms, "time positions in seconds (positions: seconds)"))
            else:
                self.time_axes[ms.name] = None
        res = o.time_resolution_s
        # encoders: tokens, then a temporal model per modality
        token_cfg = self._token_encoder_config(spec)
        self.tokenizers = nn.ModuleDict({ms.name: TokenEncoder(ms, d, token_cfg, o.vector_tokens,
                                                               time_axis=self.time_axes[ms.name], time_resolution_s=res)
                                         for ms in spec.modalities})
        if self.temporal_kind == "transformer":
            self.temporal = nn.ModuleDict({m: FusionTransformer([m], d, n_heads=heads, n_layers=o.temporal_layers,
                                                                modality_embedding=False) for m in self.mods})
        else:
            self.temporal = nn.ModuleDict({m: GRUPool(d) for m in self.mods})
        hh = o.head_hidden
        self.head_r = nn.ModuleDict({m: MLP(d, k, [hh]) for m in self.mods})
        self.head_u = nn.ModuleDict({m: MLP(d, k, [hh]) for m in self.mods})
        self.interaction = o.interaction
        self.synergy_source = o.synergy_source
        src = {m: d for m in self.mods}  # size of each modality's input to the product branch
        if self.synergy_source == "unique":
            # the S path reads the (detached) unique components [Z_U_a, Z_U_b], not the tokens: no fusion Transformer
            self.fusion: nn.Module = nn.Identity()
            fused, src = 2 * k, {m: k for m in self.mods}
        elif self.synergy_source == "decoded":
            # the S path is a centred bilinear form of the detached decoded targets alone (rus_decoded.py)
            self.fusion = nn.Identity()
            fused = self._init_decoded(spec, o, d, k)
        elif self.fusion_kind == "cross_attention":
            self.fusion = FusionTransformer(self.mods, d, n_heads=heads, n_layers=o.fusion_layers)
            fused = d
        else:
            self.fusion = nn.Identity()
            fused = 2 * d
        if self.interaction == "product" and self.synergy_source != "decoded":
            # multiplicative interaction of the two unimodal representations: products of a linear read-out of each
            # (a low-rank bilinear form), so that a parity of an EEG and an fNIRS factor is linear in H_fused
            self.product = nn.ModuleDict({m: nn.Linear(src[m], d) for m in self.mods})
            self.product_norm = nn.LayerNorm(d)
            fused += d
        linear_head = self.synergy_source == "decoded" and self.decoded_head == "linear"  # rus_decoded.py
        self.head_s = nn.Linear(fused, k, bias=False) if linear_head else MLP(fused, k, [hh])
        self.decoders = nn.ModuleDict({m: MLP(k, target_dim(t, spec.modality(m)), [hh])
                                       for m, t in self.targets.items() if t != "none"})
        other = {self.mods[0]: self.mods[1], self.mods[1]: self.mods[0]}
        self.other = other
        if self.cross_min == "neg_sim":
            # fixed random projection of H_other (d) to the component space (k); identity when d == k
            g = torch.Generator().manual_seed(o.projection_seed)
            if d >= k:  # orthonormal columns (d, k)
                proj = torch.linalg.qr(torch.randn(d, k, generator=g))[0]
            else:  # orthonormal rows (d, k)
                proj = torch.linalg.qr(torch.randn(k, d, generator=g))[0].T
            self.register_buffer("cross_projection", proj.contiguous())
            self.neg_sim_form = o.neg_sim_form
            self.neg_sim_eps = o.neg_sim_eps
        elif self.cross_min == "grl":
            self.reversal = GradientReversal(o.grl_coeff)
            self.adversaries = nn.ModuleDict()
            for m in self.mods:
                t_other = self.targets[other[m]]
                if t_other == "none":
                    raise MMIBError(f"method 'rus': cross_min 'grl' predicts the other modality's targets, but "
                                    f"method.targets.{other[m]} is 'none'")
                self.adversaries[m] = MLP(k, target_dim(t_other, spec.modality(other[m])), [hh])
        lam = o.weights
        self.objective = RUSLoss(lambda_r=lam.R, lambda_u=lam.U, lambda_s=lam.S, lambda_orth=lam.orth,
                                 lambda_cross=lam.cross, temperature_r=o.temperature_r,
                                 temperature_s=o.temperature_s,
                                 orth_exclude=[(f"R_{self.mods[0]}", f"R_{self.mods[1]}")],
                                 lambda_hsic=lam.hsic, lambda_syn=lam.syn,
                                 hsic_exclude=self._hsic_exclude(o.hsic_pairs))
        # augmentations of the two views
        acfg = dict(o.augment)
        bad = [m for m in acfg if m not in self.mods]
        if bad:
            raise UnknownNameError(f"modality of data set '{spec.name}' (method.augment)", bad[0], self.mods)
        delay = o.hrf_delay_s
        if delay < 0:
            raise MMIBError(f"method 'rus': hrf_delay_s must be >= 0, got {delay}")
        scope = o.hrf_delay_scope
        if scope not in HRF_DELAY_SCOPES:
            raise UnknownNameError("method.hrf_delay_scope", scope, list(HRF_DELAY_SCOPES))
        self.hrf_delay_scope = scope
        self.pipelines: dict[str, Augmentation] = {}  # both views
        self.s_view_pipelines: dict[str, Augmentation] = {}  # then the second view alone (scope s_view)
        for ms in spec.modalities:
            items = acfg.get(ms.name, "default")
            if items == "default":
                items = default_rus_augmentation(self.targets[ms.name], ms.kind)
            items = list(items or [])
            if delay > 0 and self.targets[ms.name] == "hemodynamic":
                shift = {"name": "hrf_delay", "max_shift_s": delay}
                if scope == "both":
                    items.append(shift)
                else:
                    self.s_view_pipelines[ms.name] = build_rus_augmentation(ms, [shift])
            self.pipelines[ms.name] = build_rus_augmentation(ms, items)
        seed = o.augment_seed
        self.generator = make_generator(int(torch.randint(0, 2**62, (1,))) if seed is None else seed)

    # ------------------------------------------------------------------ checkpoints keep the augmentation RNG
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["mmib_augment_rng"] = self.generator.get_state()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        if "mmib_augment_rng" in checkpoint:
            self.generator.set_state(checkpoint["mmib_augment_rng"])

    # ------------------------------------------------------------------ building blocks
    def augment(self, x: Mapping[str, torch.Tensor], s_view: bool = False) -> dict[str, torch.Tensor]:
        """One augmented view; ``s_view=True``: the second view, which feeds only L_S (with ``hrf_delay_scope:
        s_view`` the HRF delay is applied to it alone, so L_R, L_U and L_orth never see shifted fNIRS)."""
        out = {m: self.pipelines[m](x[m], self.generator) for m in self.mods}
        if s_view:
            out.update({m: f(out[m], self.generator) for m, f in self.s_view_pipelines.items()})
        return out

    def _tokens(self, x: Mapping[str, torch.Tensor], mods: Sequence[str]) -> dict[str, torch.Tensor]:
        return {m: self.tokenizers[m](x[m])[0] for m in mods}

    def _hidden(self, tokens: Mapping[str, torch.Tensor], m: str) -> torch.Tensor:
        if self.temporal_kind == "transformer":
            return self.temporal[m]({m: tokens[m]})
        return self.temporal[m](tokens[m])

    def _synergy(self, toks: Mapping[str, torch.Tensor], hidden: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Z_S from the tokens and the unimodal representations of both modalities (``synergy_source: unique``: from
        the detached unique components Z_U_m = Head_U_m(H_m) instead; ``decoded``: the product branch alone, on the
        detached decoded targets Decoder_m(Z_U_m))."""
        if self.synergy_source == "decoded":
            return self._decoded_synergy(hidden)
        if self.synergy_source == "unique":
            hidden = {m: self.head_u[m](hidden[m]).detach() for m in self.mods}
            hf = torch.cat([hidden[m] for m in self.mods], dim=1)
        elif self.fusion_kind == "cross_attention":
            hf = self.fusion(toks, None, self.mods)
        else:
            hf = torch.cat([hidden[m] for m in self.mods], dim=1)
        if self.interaction == "product":
            a, b = self.mods
            prod = self.product[a](hidden[a]) * self.product[b](hidden[b])
            hf = torch.cat([hf, self.product_norm(prod)], dim=1)
        return self.head_s(hf)

    def _s_detached(self, toks: Mapping[str, torch.Tensor], hidden: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Z_S of one training view from given (detached) tokens and H_m (``s_grad: fusion``)."""
        if self.synergy == "interaction":
            return self._interaction_in_batch(toks, hidden)
        return self._synergy(toks, hidden)

    def _forward_tokens(self, toks: Mapping[str, torch.Tensor], mods: Sequence[str], with_s: bool = True,
                        in_batch: bool = False) -> dict[str, torch.Tensor]:
        """H_m, Z_R_m, Z_U_m for ``mods`` and Z_S when both modalities are given (and ``with_s``). With ``synergy:
        interaction`` Z_S is the interaction term of the synergy path: against in-batch partners (``in_batch``,
        training) or against the reference bank (evaluation)."""
        out: dict[str, torch.Tensor] = {}
        for m in mods:
            h = self._hidden(toks, m)
            out[f"H_{m}"] = h
            out[f"R_{m}"] = self.head_r[m](h)
            out[f"U_{m}"] = self.head_u[m](h)
        if len(mods) == 2 and with_s:
            hidden = {m: out[f"H_{m}"] for m in self.mods}
            if self.synergy != "interaction":
                out["S"] = self._synergy(toks, hidden)
            elif in_batch:
                out["S"] = self._interaction_in_batch(toks, hidden)
            else:
                out["S"] = self._interaction_with_bank(toks, hidden)
        return out

    def _forward(self, x: Mapping[str, torch.Tensor], mods: Sequence[str], with_s: bool = True,
                 in_batch: bool = False) -> dict[str, torch.Tensor]:
        """H_m, Z_R_m, Z_U_m for ``mods`` and Z_S when both modalities are given (see :meth:`_forward_tokens`)."""
        return self._forward_tokens(self._tokens(x, mods), mods, with_s, in_batch)

    def _check_complete(self, batch: Batch) -> None:
        for m in self.mods:
            pm = (batch.get("mask") or {}).get(m)
            if pm is not None and not bool(pm.all()):
                raise MMIBError(f"method 'rus' needs both modalities in every sample; {int((~pm).sum())} samples "
                                f"of the batch lack '{m}' (drop them, or impute, before training)")

    # ------------------------------------------------------------------ training
    def loss(self, batch: Batch) -> LossOutput:
        self.modalities_of(batch, self.mods)
        self._check_complete(batch)
        x = batch["x"]
        if x[self.mods[0]].shape[0] < 2:
            raise MMIBError("method 'rus': the contrastive terms need batches of at least 2 samples")
        if self.synergy == "interaction" and self.training:
            self._fill_bank(x)
        v1, v2 = self.augment(x), self.augment(x, s_view=True)  # v2 feeds L_S only
        toks1 = self._tokens(v1, self.mods)
        # interaction: each view draws its own partners, so the partner noise of the two views is independent and
        # L_S cannot be lowered by an additive g whose partner-mean residue is shared by both views
        if self.s_grad == "all":
            o1 = self._forward_tokens(toks1, self.mods, in_batch=True)
            s2 = self._forward(v2, self.mods, in_batch=True)["S"]
        else:  # s_grad "fusion": Z_S (both views) from detached tokens and H_m, so L_S never reaches the encoders
            o1 = self._forward_tokens(toks1, self.mods, with_s=False)
            o1["S"] = self._s_detached({m: t.detach() for m, t in toks1.items()},
                                       {m: o1[f"H_{m}"].detach() for m in self.mods})
            with torch.no_grad():
                toks2 = self._tokens(v2, self.mods)
                h2 = {m: self._hidden(toks2, m) for m in self.mods}
            s2 = self._s_detached(toks2, h2)
        targets = {m: reconstruction_targets(t, x[m], self.spec.modality(m)) for m, t in self.targets.items()
                   if t != "none"}
        recon = {m: (self.decoders[m](o1[f"U_{m}"]), targets[m]) for m in targets}
        cross: dict[str, torch.Tensor] = {}
        for m in self.mods:
            if self.cross_min == "neg_sim":
                h_other = o1[f"H_{self.other[m]}"] @ self.cross_projection
                cross[m] = neg_sim_loss(o1[f"U_{m}"], h_other, self.neg_sim_form, self.neg_sim_eps)
            elif self.cross_min == "grl":
                pred = self.adversaries[m](self.reversal(l2_normalize(o1[f"U_{m}"])))
                cross[m] = (pred - targets[self.other[m]]).pow(2).mean()
        comps = {k: o1[k] for k in self.component_order()}
        uni = s_syn = None
        if self.synergy == "unimodal_hsic":
            # L_syn trains the fusion and the S head only: Z_S recomputed from detached tokens and H_m, so that the
            # encoders cannot lower it by dropping from one modality what the other also carries
            uni = {m: o1[f"H_{m}"].detach() for m in self.mods}
            if self.syn_grad == "fusion" and self.s_grad == "all":
                s_syn = self._synergy({m: t.detach() for m, t in toks1.items()}, uni)
        out = self.objective({m: o1[f"R_{m}"] for m in self.mods}, (o1["S"], s2), comps, recon, cross, uni, s_syn)
        # the decoded targets and Z_R of view 1, as computed above for L_U and L_R
        centre = self._centre_loss({m: recon[m][0] for m in self.mods if m in recon},
                                   {m: o1[f"R_{m}"] for m in self.mods})
        if centre is not None:  # decoded_centre: redundant - trains the prediction of the decoded targets only
            out = LossOutput(out.loss + centre, {**out.terms, "L_centre": centre.detach()})
        return out

    def _token_encoder_config(self, spec: DatasetSpec) -> dict[str, Any]:
        """The encoder config of the token encoders: the ``encoder`` group, except that a signal whose target is a
        time-resolved band power (``band_envelope``, ``band_envelope_peak``) gets the ``filterbank`` front end (log
        band power over 0.5 s windows every 0.25 s, :class:`~mmib.nn.encoders.FilterbankEncoder`) unless
        ``encoder.modalities.<m>.type`` names an encoder for it (issue 20: the EEG CNN lost the 0.5 s gamma burst)."""
        enc = dict(self.encoder_cfg)
        per = {m: dict(v or {}) for m, v in (enc.get("modalities") or {}).items()}
        for ms in spec.modalities:
            if (ms.kind == "signal" and self.targets[ms.name] in TIME_RESOLVED_TARGETS
                    and "type" not in per.get(ms.name, {})):
                per[ms.name] = {**per.get(ms.name, {}), "type": "filterbank"}
        enc["modalities"] = per
        return enc

    def _hsic_exclude(self, which: str) -> list[tuple[str, str]]:
        """The component pairs left out of L_hsic: ``all`` = every pair of L_orth; ``modality`` = only
        (R_m, U_m) of each modality and (U_a, U_b)."""
        a, b = self.mods
        keys = self.component_order()
        if which == "all":
            return [(f"R_{a}", f"R_{b}")]
        if which != "modality":
            raise UnknownNameError("method.hsic_pairs", which, ["modality", "all"])
        keep = {frozenset((f"R_{m}", f"U_{m}")) for m in self.mods} | {frozenset((f"U_{a}", f"U_{b}"))}
        return [(p, q) for i, p in enumerate(keys) for q in keys[i + 1:] if frozenset((p, q)) not in keep]

    def component_order(self) -> list[str]:
        return [f"R_{m}" for m in self.mods] + [f"U_{m}" for m in self.mods] + ["S"]

    # ------------------------------------------------------------------ interface
    def embed(self, batch: Batch, modalities: Sequence[str] | None = None, space: str = "representation") -> dict[str, torch.Tensor]:
        if space not in SPACES:
            raise MMIBError(f"unknown representation space '{space}'; valid: {', '.join(SPACES)}")
        mods = self.modalities_of(batch, modalities)
        out = self._forward(batch["x"], mods, with_s=False)
        key = "H" if space == "representation" else "R"
        return {m: out[f"{key}_{m}"] for m in mods}

    def hidden(self, batch: Batch, modalities: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """H_m, the temporal encoder's output of each requested modality (``{modality: (N, hidden_dim)}``), from
        which the heads read: the positive control of a "component does not decode" check."""
        mods = self.modalities_of(batch, modalities)
        toks = self._tokens(batch["x"], mods)
        return {m: self._hidden(toks, m) for m in mods}

    def fuse(self, batch: Batch, modalities: Sequence[str] | None = None) -> torch.Tensor:
        mods = self.modalities_of(batch, modalities)
        if len(mods) != 2:
            raise MMIBError(f"method 'rus': the fused (synergy) representation Z_S needs both modalities "
                            f"({', '.join(self.mods)}), got {', '.join(mods)}")
        self._check_complete(batch)
        return self._forward(batch["x"], mods)["S"]

    def components(self, batch: Batch, modalities: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        mods = self.modalities_of(batch, modalities)
        if len(mods) == 2:
            self._check_complete(batch)
        out = self._forward(batch["x"], mods)
        return {k: out[k] for k in self.component_order() if k in out}
