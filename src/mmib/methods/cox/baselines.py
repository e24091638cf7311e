"""Baselines of the COX paper (§4.1, spec §6.1), sharing COX's parts (frozen perceptors, OOM learner ``g^O`` and
classifier ``h^O``, and a connection per IM modality that only serves retrieval):

=================  ==================================================================================================
``cox_random``     randomly initialized model, never trained (chance level)
``cox_erm``        cross-entropy on the labelled OOM pairs only
``cox_entmin``     ERM + entropy minimization on the unlabelled OOM samples (Grandvalet & Bengio, 2004)
``cox_ssl``        Gaussian-noise consistency: InfoNCE between two noisy views of each OOM sample (+ ERM if labels)
``cox_moco``       MoCo (He et al., 2020): momentum key encoder + queue of negatives, Gaussian-noise views; in the
                   semi-supervised scenario combined with EntMin, as in the paper
``cox_aligned``    upper bound, an ORACLE: the OOM learner trained with the hidden labels of every OOM training sample
                   and the connections with class-matched IM partners (a perceptor trained with paired data)
=================  ==================================================================================================

The connections of the baselines are trained with the reconstruction loss on whatever pairs the baseline has, with
the OOM target detached, so that ``g^O`` is trained by the baseline's own objective only; without pairs they stay at
their random initialization (retrieval at chance).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
from torch.nn import functional as F

from mmib.data.dataset import Batch
from mmib.data.spec import DatasetSpec
from mmib.errors import MMIBError
from mmib.methods.cox.method import COXMethod, _subset_lengths
from mmib.methods.cox.options import (
    COXAlignedOptions,
    COXBaselineOptions,
    COXEntMinOptions,
    COXERMOptions,
    COXMoCoOptions,
    COXRandomOptions,
    COXSSLOptions,
)
from mmib.methods.registry import register_method
from mmib.nn.heads import MLP
from mmib.objectives.base import LossOutput, l2_normalize
from mmib.objectives.cox import ConnectionLoss


class COXBaseline(COXMethod):
    """Shared parts of the baselines: no per-epoch selection, connections trained on pairs with a detached target."""

    name = "cox_baseline"
    Options = COXBaselineOptions

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        self.recon = ConnectionLoss(self.opts.recon_reduction, detach_target=True)
        self.noise_std = self.opts.noise_std
        if self.noise_std < 0:
            raise MMIBError(f"method.noise_std must be >= 0, got {self.noise_std}")

    def _check_dims(self, d_im: Mapping[str, int]) -> None:
        pass

    def on_train_epoch_start(self) -> None:
        pass

    def _oom_rows(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        self.modalities_of(batch, self.spec.modality_names)
        has_oom, has_im = self._row_masks(batch)
        sel = torch.nonzero(has_oom, as_tuple=True)[0]
        return sel, has_im[sel], batch["x"][self.oom][sel], has_oom

    def _supervised_part(self, batch: Batch, sel: torch.Tensor, labelled: torch.Tensor, z_o: torch.Tensor,
                         logits: torch.Tensor, terms: dict[str, torch.Tensor]) -> torch.Tensor:
        """CE on the labelled pairs + reconstruction of the pairs (connection only; same sampling as COX)."""
        return self._supervised(batch, sel, labelled, z_o, logits, terms)[0]

    def _supervised_start(self, batch: Batch) -> _Start:
        """The OOM rows of a batch through g^O and the head, and the supervised part of the loss on them."""
        sel, labelled, x_o, _ = self._oom_rows(batch)
        lengths = _subset_lengths(batch, self.oom, sel)
        z_o = self.encode_oom(x_o, lengths)
        logits = self.oom_head(z_o)
        terms: dict[str, torch.Tensor] = {}
        loss = self._supervised_part(batch, sel, labelled, z_o, logits, terms)
        return _Start(loss, logits, labelled, terms, x_o, lengths)

    def _noisy(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.noise_std * torch.randn_like(x)


class _Start(NamedTuple):
    loss: torch.Tensor
    logits: torch.Tensor  # (rows with the OOM modality, classes)
    labelled: torch.Tensor  # which of those rows have a label (and the IM modalities)
    terms: dict[str, torch.Tensor]
    x_o: torch.Tensor
    lengths: Any


@register_method("cox_random")
class COXRandomMethod(COXBaseline):
    """Random baseline: the randomly initialized model, never updated."""

    name = "cox_random"
    Options = COXRandomOptions

    def training_step(self, batch: Batch, batch_idx: int) -> None:
        return None  # Lightning skips the optimizer step

    def loss(self, batch: Batch) -> LossOutput:
        sel, labelled, x_o, _ = self._oom_rows(batch)
        logits = self.oom_head(self.encode_oom(x_o, _subset_lengths(batch, self.oom, sel)))
        terms = {}
        if bool(labelled.any()):
            terms["ce_labelled"] = F.cross_entropy(logits[labelled], batch["y"][sel][labelled]).detach()
        return LossOutput(self._zero(logits), terms)


@register_method("cox_erm")
class COXERMMethod(COXBaseline):
    """ERM: cross-entropy on the labelled OOM pairs only."""

    name = "cox_erm"
    Options = COXERMOptions

    def erm(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """The ERM loss of a batch with the OOM logits of its rows, their labelled mask and the logged terms."""
        st = self._supervised_start(batch)
        return st.loss, st.logits, st.labelled, st.terms

    def loss(self, batch: Batch) -> LossOutput:
        loss, _, _, terms = self.erm(batch)
        return LossOutput(loss, terms)


def entropy_of_logits(logits: torch.Tensor) -> torch.Tensor:
    """Mean Shannon entropy (nats) of softmax(logits) over rows; 0 for no rows."""
    if logits.shape[0] == 0:
        return logits.sum() * 0.0
    logp = F.log_softmax(logits, dim=1)
    return -(logp.exp() * logp).sum(dim=1).mean()


@register_method("cox_entmin")
class COXEntMinMethod(COXERMMethod):
    """EntMin: ERM + ``entmin_weight`` x the mean prediction entropy of the unlabelled OOM samples."""

    name = "cox_entmin"
    Options = COXEntMinOptions

    def loss(self, batch: Batch) -> LossOutput:
        loss, logits, labelled, terms = self.erm(batch)
        ent = entropy_of_logits(logits[~labelled])
        terms["entropy"] = ent.detach()
        return LossOutput(loss + self.opts.entmin_weight * ent, terms)


def nt_xent(q: torch.Tensor, k: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric in-batch InfoNCE between two views (rows of q and k with the same index are positives)."""
    q, k = l2_normalize(q), l2_normalize(k)
    logits = q @ k.T / temperature
    t = torch.arange(q.shape[0], device=q.device)
    return 0.5 * (F.cross_entropy(logits, t) + F.cross_entropy(logits.T, t))


@register_method("cox_ssl")
class COXSSLMethod(COXBaseline):
    """SSL: Gaussian-noise consistency of the OOM features (in-batch InfoNCE between two noisy views), plus ERM on
    the labelled pairs when there are any. Without labels its classifier is never trained (spec §6.1: how the paper
    gets a classifier from SSL is not given)."""

    name = "cox_ssl"
    Options = COXSSLOptions

    def loss(self, batch: Batch) -> LossOutput:
        loss, logits, labelled, terms, x_o, lengths = self._supervised_start(batch)
        if x_o.shape[0] >= 2:
            cons = nt_xent(self.encode_oom(self._noisy(x_o), lengths), self.encode_oom(self._noisy(x_o), lengths),
                           self.opts.temperature)
            loss = loss + cons
            terms["consistency"] = cons.detach()
        return LossOutput(loss, terms)


@register_method("cox_moco")
class COXMoCoMethod(COXBaseline):
    """MoCo: query = g^O + projector on one noisy view, key = their momentum (EMA) copies on another noisy view,
    negatives from a queue; semi-supervised: + ERM + EntMin (as in the paper)."""

    name = "cox_moco"
    Options = COXMoCoOptions
    trainable = ("oom_encoder", "oom_head", "connections", "projector")

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__(spec, cfg, encoder_cfg)
        self.momentum, self.temperature, qsize = self.opts.momentum, self.opts.temperature, self.opts.queue_size
        if not 0 <= self.momentum < 1 or self.temperature <= 0 or qsize < 1:
            raise MMIBError("method: momentum must lie in [0, 1), temperature > 0, queue_size >= 1")
        self.projector = MLP(self.d_oom, self.d_oom, [self.d_oom * 2])
        self.key_encoder = copy.deepcopy(self.oom_encoder)
        self.key_projector = copy.deepcopy(self.projector)
        for p in list(self.key_encoder.parameters()) + list(self.key_projector.parameters()):
            p.requires_grad_(False)
        g = torch.Generator().manual_seed(0)
        self.register_buffer("queue", l2_normalize(torch.randn(qsize, self.d_oom, generator=g)))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def _momentum_update(self) -> None:
        for q, k in ((self.oom_encoder, self.key_encoder), (self.projector, self.key_projector)):
            for pq, pk in zip(q.parameters(), k.parameters()):
                pk.mul_(self.momentum).add_(pq.detach(), alpha=1 - self.momentum)

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        n, size = keys.shape[0], self.queue.shape[0]
        ptr = int(self.queue_ptr)
        idx = (torch.arange(n, device=keys.device) + ptr) % size
        self.queue[idx] = keys[-size:] if n > size else keys
        self.queue_ptr.fill_((ptr + n) % size)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._momentum_update()

    def loss(self, batch: Batch) -> LossOutput:
        loss, logits, labelled, terms, x_o, lengths = self._supervised_start(batch)
        if bool(labelled.any()):
            ent = entropy_of_logits(logits[~labelled])
            loss = loss + self.opts.entmin_weight * ent
            terms["entropy"] = ent.detach()
        if x_o.shape[0] >= 1:
            q = l2_normalize(self.projector(self.encode_oom(self._noisy(x_o), lengths)))
            with torch.no_grad():
                lt = lengths["lengths"][self.oom] if lengths else None
                k = l2_normalize(self.key_projector(self.key_encoder(self._noisy(x_o), lt)))
            pos = (q * k).sum(dim=1, keepdim=True)
            neg = q @ self.queue.clone().detach().T
            moco = F.cross_entropy(torch.cat([pos, neg], dim=1) / self.temperature,
                                   torch.zeros(q.shape[0], dtype=torch.long, device=q.device))
            loss = loss + moco
            terms["moco"] = moco.detach()
            if self.training:
                self._enqueue(k)
        return LossOutput(loss, terms)


@register_method("cox_aligned")
class COXAlignedMethod(COXBaseline):
    """Upper bound (an ORACLE that reads the hidden labels of the OOM training samples): CE on every OOM training
    sample, and connections trained on class-matched IM partners (random IM instance of the same class)."""

    name = "cox_aligned"
    Options = COXAlignedOptions

    def loss(self, batch: Batch) -> LossOutput:
        sel, labelled, x_o, _ = self._oom_rows(batch)
        z_o = self.encode_oom(x_o, _subset_lengths(batch, self.oom, sel))
        logits = self.oom_head(z_o)
        y = batch["y"][sel]
        ce = F.cross_entropy(logits, y) if len(sel) else self._zero(logits)
        terms = {"ce_oracle": ce.detach()}
        loss = ce
        if self._cache is not None and len(sel) and self.training:
            y_im = self._cache["y_im"]
            partners = []
            for yi in y.tolist():
                cand = torch.nonzero(y_im == yi, as_tuple=True)[0]
                partners.append(cand[torch.randint(0, len(cand), (1,))].item() if len(cand) else -1)
            p = torch.as_tensor(partners, device=z_o.device)
            ok = p >= 0
            rec, rt = self._recon(z_o[ok], {m: self._cache["z_im"][m][p[ok]] for m in self.im})
            loss = loss + rec
            terms.update(rt)
        return LossOutput(loss, terms)


# the earlier class names (before each registered name had a class named after it: cox_erm -> COXERMMethod)
COXRandom, COXERM, COXEntMin = COXRandomMethod, COXERMMethod, COXEntMinMethod
COXSSL, COXMoCo, COXAligned = COXSSLMethod, COXMoCoMethod, COXAlignedMethod

__all__ = ["COXBaseline", "COXRandomMethod", "COXERMMethod", "COXEntMinMethod", "COXSSLMethod", "COXMoCoMethod",
           "COXAlignedMethod", "COXRandom", "COXERM", "COXEntMin", "COXSSL", "COXMoCo", "COXAligned"]
