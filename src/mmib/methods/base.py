"""The Method interface: every method — self-supervised or supervised, one phase or several — is a
LightningModule built from a config and a :class:`DatasetSpec` that can

* be trained by the engine (:meth:`loss` per batch; multi-phase schedules and alternating optimizers live in the
  method, e.g. by overriding :meth:`training_step` with manual optimization),
* return per-modality **representations** for any subset of modalities (:meth:`embed`),
* and, where it has them, a **fused** representation (:meth:`fuse`), named **components** (:meth:`components`),
  **predictions** (:meth:`predict`), and a retrieval **score** of queries against candidates (:meth:`score`),
* and, for a method trained with a modality seen without paired data (COX), its **out-of-modal state**
  (:meth:`oom_state`: the OOM modality, the training phase, the current anchors' pseudo-labels), which the ``oom``
  protocol and :class:`mmib.eval.oom.OOMTracker` read instead of the method's attributes.

The evaluation suite needs nothing else. Two representation spaces exist: ``space="representation"`` (the
encoder output f(x), used by downstream probes, as in the OVA-IB protocol) and ``space="embedding"`` (the
space the objective acts on, e.g. after a projection head, used by :meth:`score`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import lightning as L
import torch
from torch import nn

from mmib.data.dataset import Batch, complete_rows_mask, select_batch_rows, validate_batch
from mmib.data.spec import DatasetSpec
from mmib.errors import MMIBError, UnknownNameError
from mmib.methods.options import OptimOptions, build_options, options_dict
from mmib.nn.encoders import build_encoder
from mmib.objectives.base import LossOutput
from mmib.objectives.clip import mean_cosine_score

SPACES = ("representation", "embedding")


class NonFiniteLossError(MMIBError, FloatingPointError):
    """The training loss became NaN or inf; raised instead of silently training on garbage."""


@dataclass(frozen=True)
class OOMState:
    """What a method trained in the out-of-modal (OOM) setting declares to the evaluation (:meth:`Method.oom_state`).

    * ``modality``: the OOM modality (seen without paired data in training);
    * ``phase``: the training schedule's phase at the asked epoch (COX: ``connect`` / ``warmup`` / ``explore``), or
      None for a method without phases;
    * ``anchors``: ``(row ids, pseudo-labels)`` of the current anchors (data set rows and the classes the method
      assigned them; empty tensors before the first selection), or None for a method without anchors. Evaluation
      only: :func:`mmib.eval.oom.anchor_label_accuracy` scores them against the hidden labels;
    * ``connections``: True for a method with COX's parts — per-IM-modality heads ``im_heads``, the optimal heads
      ``optimal_heads`` and the connections ``components`` — on which the Fig. 5/6 diagnostics of
      :class:`mmib.eval.oom.OOMTracker` (A/D agreement, h_k^* accuracy, mapping MMD, entropy) are computed.
    """

    modality: str
    phase: str | None = None
    anchors: tuple[torch.Tensor, torch.Tensor] | None = None
    connections: bool = False


class Method(L.LightningModule):
    """Base class of every mmib method. Subclasses set ``name`` and implement :meth:`loss` and :meth:`embed`.

    Args:
        spec: the data set's spec (modalities, task).
        cfg: the method's config (``method`` group), a mapping.
        encoder_cfg: the encoder config (``encoder`` group), a mapping.
    """

    name: ClassVar[str] = ""
    #: needs labels to train
    supervised: ClassVar[bool] = False
    #: least number of modalities the method can train with
    min_modalities: ClassVar[int] = 1
    #: exact number of modalities, if the method is defined for one M only (TRIANGLE: 3)
    exact_modalities: ClassVar[int | None] = None
    #: the dataclass of the method's options (:mod:`mmib.methods.options`); built from ``cfg`` into ``self.opts``,
    #: it owns the defaults and refuses unknown keys and wrong types. None: the method reads ``self.cfg`` itself
    Options: ClassVar[type | None] = None

    def __init__(self, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None):
        super().__init__()
        self.spec = spec
        self.cfg = dict(cfg)
        self.encoder_cfg = dict(encoder_cfg or {})
        self.opts: Any = None if self.Options is None else build_options(self.Options, self.cfg, f"method '{self.name}'")
        m = len(spec.modalities)
        if m < self.min_modalities:
            raise MMIBError(f"method '{self.name}' needs at least {self.min_modalities} modalities, data set "
                            f"'{spec.name}' gives {m} ({', '.join(spec.modality_names)})")
        if self.exact_modalities is not None and m != self.exact_modalities:
            raise MMIBError(f"method '{self.name}' is defined for exactly {self.exact_modalities} modalities, data set "
                            f"'{spec.name}' gives {m} ({', '.join(spec.modality_names)})")
        if self.supervised and spec.task == "none":
            raise MMIBError(f"method '{self.name}' is supervised; data set '{spec.name}' has no labels")
        self.save_hyperparameters({"method_name": self.name, "spec": spec.to_dict(), "cfg": self.cfg,
                                   "encoder_cfg": self.encoder_cfg})

    # ------------------------------------------------------------------ helpers for subclasses
    def build_encoders(self, out_dim: int) -> nn.ModuleDict:
        # a per-modality override for a modality the data set does not have (a typo) would be silently ignored
        per_modality = self.encoder_cfg.get("modalities") or {}
        if not isinstance(per_modality, Mapping):
            raise MMIBError(f"encoder.modalities: expected a mapping {{modality: settings}}, got {per_modality!r}")
        if per_modality:
            try:
                self.spec.check_modalities([str(k) for k in per_modality])
            except UnknownNameError as e:  # the same check, naming where the bad name came from
                raise UnknownNameError(f"modality under encoder.modalities for data set '{self.spec.name}'", e.name,
                                       e.valid) from None
        return nn.ModuleDict({ms.name: build_encoder(ms, out_dim, self.encoder_cfg) for ms in self.spec.modalities})

    def modalities_of(self, batch: Batch, modalities: Sequence[str] | None = None) -> tuple[str, ...]:
        """Validate the batch and return the requested (default: all present) modalities in the spec's order."""
        return validate_batch(batch, self.spec, modalities)

    def complete_rows(self, batch: Batch, modalities: Sequence[str] | None = None) -> Batch:
        """The batch restricted to the samples that hold every modality in ``modalities`` (default: all of the data
        set's) according to the presence mask; joint terms (contrastive pairs, fusion) need them. Fewer than 2
        complete samples is an error naming the method."""
        keep = complete_rows_mask(batch, self.spec.modality_names if modalities is None else modalities)
        if keep is None:
            return batch
        if int(keep.sum()) < 2:
            raise MMIBError(f"method '{self.name}': fewer than 2 samples in the batch have every modality")
        return select_batch_rows(batch, keep)

    @staticmethod
    def lengths_of(batch: Batch, m: str) -> torch.Tensor | None:
        return (batch.get("lengths") or {}).get(m)

    # ------------------------------------------------------------------ the interface
    def loss(self, batch: Batch) -> LossOutput:
        """The training objective on one batch."""
        raise NotImplementedError

    def embed(self, batch: Batch, modalities: Sequence[str] | None = None, space: str = "representation") -> dict[str, torch.Tensor]:
        """Per-modality representations ``{modality: (N, d)}`` for the requested subset of modalities."""
        raise NotImplementedError

    def fuse(self, batch: Batch, modalities: Sequence[str] | None = None) -> torch.Tensor:
        """A fused representation (N, d) of the given modalities (methods with a fusion module)."""
        raise NotImplementedError(f"method '{self.name}' has no fused representation")

    def components(self, batch: Batch, modalities: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Named representation components, e.g. ``{"R": ..., "U_eeg": ..., "S": ...}``."""
        raise NotImplementedError(f"method '{self.name}' has no named components")

    def predict(self, batch: Batch, modalities: Sequence[str] | None = None) -> torch.Tensor:
        """Task predictions: class logits (N, C) or regression outputs (N, k) (supervised methods)."""
        raise NotImplementedError(f"method '{self.name}' makes no predictions")

    def score(self, queries: Mapping[str, torch.Tensor], candidates: torch.Tensor) -> torch.Tensor:
        """Retrieval scores (Nq, Nc), higher = better, between query embeddings (one tensor per query modality,
        ``space="embedding"``) and candidate embeddings of one modality. Default: mean cosine."""
        return mean_cosine_score(queries, candidates)

    def oom_state(self, epoch: int | None = None) -> OOMState | None:
        """The out-of-modal state at ``epoch`` (default: the current one) of a method trained with one modality seen
        without paired data (:class:`OOMState`); None (the default) for every other method, which the ``oom``
        protocol and :class:`mmib.eval.oom.OOMTracker` then refuse with a one-line error. This is the only way the
        evaluation learns a method's OOM modality, phase and anchors."""
        return None

    @classmethod
    def capabilities(cls) -> dict[str, bool]:
        """Which optional parts of the interface this method implements."""
        return {k: getattr(cls, k) is not getattr(Method, k) for k in ("fuse", "components", "predict", "score")}

    # ------------------------------------------------------------------ Lightning glue
    def _log_terms(self, prefix: str, out: LossOutput, batch_size: int) -> None:
        """Log the loss (per step in training, per epoch everywhere) and accumulate the scalar terms, which are
        logged once per epoch as batch-size-weighted means (:meth:`_flush_terms`). One ``self.log`` call per term and
        step costs more than the model's own step on small models (benchmarks/bench_training_loop.py)."""
        on_step = prefix == "train"
        # sync_dist: under DDP the epoch loss is the batch-size-weighted mean over every process's batches, not rank
        # 0's alone (the step value shown is the mean over processes: one scalar all-reduce per step; a no-op in one
        # process, where Lightning skips the sync)
        self.log(f"{prefix}/loss", out.loss.detach(), prog_bar=True, on_step=on_step, on_epoch=True,
                 batch_size=batch_size, sync_dist=True)
        acc = self._term_sums.setdefault(prefix, {})
        for k, v in out.terms.items():
            v = torch.as_tensor(v)
            if v.dim() == 0:
                v = v.detach().to(torch.float32)
                s, n = acc.get(k, (None, 0))
                acc[k] = (v * batch_size if s is None else s + v * batch_size, n + batch_size)

    @property
    def _term_sums(self) -> dict[str, dict[str, tuple[torch.Tensor, int]]]:
        if "_mmib_term_sums" not in self.__dict__:
            self.__dict__["_mmib_term_sums"] = {}
        return self.__dict__["_mmib_term_sums"]

    def _flush_terms(self, prefix: str) -> None:
        for k, (s, n) in self._term_sums.pop(prefix, {}).items():
            self.log(f"{prefix}/{k}", s / max(n, 1), on_step=False, on_epoch=True, sync_dist=True)

    def on_train_epoch_end(self) -> None:
        self._flush_terms("train")
        self._log_learned_temperatures()

    def _log_learned_temperatures(self) -> None:
        """Every method with a learned temperature reports it: ``final_temperature`` and ``initial_temperature``
        for the main one (the only one, or ``objective.temperature``), ``.../<qualified name>`` for the others; the
        run's ``final_metrics`` keep the last epoch's, and the report flags a temperature that barely moved."""
        from mmib.objectives.base import temperatures

        learned = {n: t for n, t in temperatures(self).items() if t.learnable}
        for name, t in learned.items():
            key = "" if len(learned) == 1 or name == "objective.temperature" else f"/{name}"
            self.log(f"final_temperature{key}", float(t.value), on_step=False, on_epoch=True)
            self.log(f"initial_temperature{key}", float(t.initial), on_step=False, on_epoch=True)

    def on_validation_epoch_start(self) -> None:
        self._term_sums.pop("val", None)

    def on_validation_epoch_end(self) -> None:
        self._flush_terms("val")

    def on_test_epoch_start(self) -> None:
        self._term_sums.pop("test", None)

    def on_test_epoch_end(self) -> None:
        self._flush_terms("test")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # a mid-epoch checkpoint keeps the epoch's running term sums, so a resumed epoch logs the same means
        checkpoint["mmib_term_sums"] = {p: {k: (s.cpu(), n) for k, (s, n) in acc.items()}
                                        for p, acc in self._term_sums.items() if p == "train"}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._term_sums.clear()
        for p, acc in (checkpoint.get("mmib_term_sums") or {}).items():
            self._term_sums[p] = {k: (s.to(self.device), n) for k, (s, n) in acc.items()}

    def check_finite(self, out: LossOutput, where: str) -> None:
        if not torch.isfinite(out.loss):
            bad = {k: float(v) for k, v in out.terms.items() if torch.as_tensor(v).dim() == 0}
            raise NonFiniteLossError(
                f"method '{self.name}': {where} loss is {float(out.loss)} at epoch {self.current_epoch}, "
                f"step {self.global_step}; terms: {bad}. Lower the learning rate or check the inputs."
            )

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        out = self.loss(batch)
        self.check_finite(out, "training")
        self._log_terms("train", out, _batch_size(batch))
        return out.loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        out = self.loss(batch)
        self._log_terms("val", out, _batch_size(batch))

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        out = self.loss(batch)
        self._log_terms("test", out, _batch_size(batch))

    def configure_optimizers(self):
        """``method.optim``: ``name`` (adam | adamw | sgd), ``lr``, ``weight_decay`` and the optimizer's other
        options; with ``temperature_lr`` every learned temperature gets its own learning rate (and no weight decay)
        in a second parameter group."""
        from mmib.objectives.base import temperature_parameters

        typed = getattr(self.opts, "optim", None)  # options without an optim block: the defaults below
        opt_cfg = options_dict(typed) if isinstance(typed, OptimOptions) else {}
        t_lr = opt_cfg.pop("temperature_lr", None)
        if t_lr is not None and (not isinstance(t_lr, (int, float)) or isinstance(t_lr, bool) or not float(t_lr) > 0):
            raise MMIBError(f"method.optim.temperature_lr must be a number > 0 (or null), got {t_lr!r}")
        name = opt_cfg.pop("name", "adam")
        lr = float(opt_cfg.pop("lr", 1e-3))
        wd = float(opt_cfg.pop("weight_decay", 0.0))
        opts = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}
        if name not in opts:
            raise MMIBError(f"method.optim.name: unknown optimizer '{name}'; valid: {', '.join(opts)}")
        temp = temperature_parameters(self) if t_lr is not None else []
        if not temp:
            return opts[name](self.parameters(), lr=lr, weight_decay=wd, **opt_cfg)
        ids = {id(p) for p in temp}
        groups = [{"params": [p for p in self.parameters() if id(p) not in ids]},
                  {"params": temp, "lr": float(t_lr), "weight_decay": 0.0}]
        return opts[name](groups, lr=lr, weight_decay=wd, **opt_cfg)


def _batch_size(batch: Batch) -> int:
    return int(next(iter(batch["x"].values())).shape[0])
