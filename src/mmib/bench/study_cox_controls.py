"""The positive controls of COX's exploration term (issue 19; ``docs/results/controls.md``, section "COX"), as
evaluation protocols and a per-epoch callback of the ``controls`` suite (registered on import; the suite lists this
module under ``imports:``). Everything here is evaluation only: hidden labels are read from the data module, never by
the method, and nothing reaches a loss or draws from the global random state.

The term (Eq. 13) is ``sum_d sum_a KL(p_d || p_a) = sum_d |A| [-H(p_d) - sum_c p_dc mean_a log p_ac]``; for fixed
anchors each ``p_d`` is pulled toward one common target, the normalized geometric mean of the anchors' posteriors
``g = softmax(mean_a log p_a)`` (:func:`geometric_target`), whatever the row's input.

* ``oom_groups`` — per-class and per-group OOM test accuracy from the OOM input alone (``class/<c>``,
  ``group/<name>``, ``group/rest``; metrics ``accuracy``, ``pred_share``, ``true_share``), so every COX-family method
  reports its accuracy on the OOM-unique classes (cox_sim: both IM modalities are blind to the pair (0, 1)); and a
  ``disagreement`` row on the test split (:func:`pull_stats`: D / A of the optimal heads, the target ``g`` of A).
* :class:`PullTrace` — a Lightning callback: after every training epoch, :func:`pull_stats` on the unpaired training
  OOM rows with the loss's roles (D = the optimal heads disagree; anchors = the agreement rows and the labelled
  pairs) into ``pull_trace.json`` in the run folder.
* ``pull_trace`` — one row per recorded epoch of that file (``pull/epoch-NN``), so the bench aggregates over seeds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch

from mmib.bench.extensions import register_protocol
from mmib.errors import MMIBError, UnknownNameError

PULL_FILE = "pull_trace.json"
#: the metrics of :func:`pull_stats` (the ``disagreement`` row and every ``pull_trace`` row)
PULL_METRICS = ("acc_D", "acc_A", "frac_D", "kl_D_to_g", "kl_A_to_g", "entropy_D", "g_max", "gmax_true_share_D",
                "gmax_pred_share_D", "acc_D_gmax", "acc_D_rest")
DEFAULT_GROUPS = {"unique": [0, 1]}


def geometric_target(logp_a: torch.Tensor) -> torch.Tensor:
    """``log g`` with ``g = softmax(mean_a log p_a)``: the minimizer over ``p_d`` of ``sum_a KL(p_d || p_a)`` for the
    anchors' log-posteriors ``logp_a`` (|A|, C) — the normalized geometric mean of the anchors' posteriors."""
    if logp_a.dim() != 2 or logp_a.shape[0] == 0:
        raise MMIBError(f"geometric_target: need (|A| >= 1, C) log-posteriors, got {tuple(logp_a.shape)}")
    return torch.log_softmax(logp_a.mean(0), dim=0)


def _kl_rows(logp: torch.Tensor, logq: torch.Tensor) -> torch.Tensor:
    return (logp.exp() * (logp - logq)).sum(1)


def pull_stats(logits: torch.Tensor, y: torch.Tensor, in_d: torch.Tensor, is_anchor: torch.Tensor) -> dict[str, float]:
    """What the exploration term does to the disagreement rows: ``g`` = :func:`geometric_target` of the anchors'
    posteriors; on D the accuracy (hidden labels), mean KL(p_d || g), entropy, the share of D predicted as argmax g
    and the share of D whose true class is argmax g, the accuracy on the D rows of that class (``acc_D_gmax``: where
    the pull must help) and of the others (``acc_D_rest``); on the anchors their accuracy and mean KL(p_a || g);
    ``g_max``. NaN where a set is empty."""
    nan = float("nan")
    logp = torch.log_softmax(logits.double(), dim=1)
    pred = logp.argmax(1)
    y, in_d, is_anchor = y.long(), in_d.bool(), is_anchor.bool()
    out = {k: nan for k in PULL_METRICS}
    out["frac_D"] = float(in_d.double().mean()) if len(in_d) else nan
    if bool(is_anchor.any()):
        out["acc_A"] = float((pred[is_anchor] == y[is_anchor]).double().mean())
    if bool(in_d.any()):
        out["acc_D"] = float((pred[in_d] == y[in_d]).double().mean())
        out["entropy_D"] = float(-(logp[in_d].exp() * logp[in_d]).sum(1).mean())
    if not bool(is_anchor.any()):
        return out
    logg = geometric_target(logp[is_anchor])
    k = int(logg.argmax())
    out["g_max"] = float(logg.exp().max())
    out["kl_A_to_g"] = float(_kl_rows(logp[is_anchor], logg[None]).mean())
    if bool(in_d.any()):
        out["kl_D_to_g"] = float(_kl_rows(logp[in_d], logg[None]).mean())
        out["gmax_true_share_D"] = float((y[in_d] == k).double().mean())
        out["gmax_pred_share_D"] = float((pred[in_d] == k).double().mean())
        for name, sel in (("acc_D_gmax", in_d & (y == k)), ("acc_D_rest", in_d & (y != k))):
            if bool(sel.any()):
                out[name] = float((pred[sel] == y[sel]).double().mean())
    return out


def _present(batch: Mapping[str, Any], modalities: Sequence[str]) -> torch.Tensor:
    """Rows of a batch holding every one of ``modalities`` (a boolean mask on the CPU)."""
    keep = torch.ones(batch["x"][modalities[0]].shape[0], dtype=torch.bool)
    for m in modalities:
        if "mask" in batch and m in batch["mask"]:
            keep &= batch["mask"][m].cpu().bool()
    return keep


@torch.no_grad()
def method_pull_stats(method, batch: Mapping[str, Any], unpaired_only: bool = False) -> dict[str, float]:
    """:func:`pull_stats` of ``method`` (a COX-family method: ``components`` ``hstar:<k>``) on a split batch: its
    OOM rows (``unpaired_only``: only those without the IM modalities), D = the optimal heads disagree, anchors = the
    agreement rows plus, where the batch has them, the paired rows (the labelled pairs of the training split)."""
    from mmib.data.dataset import batch_to_device, select_batch_rows
    from mmib.eval.oom import oom_modality_of
    from mmib.objectives.cox import agreement_mask

    oom = oom_modality_of(method)
    im = [m for m in method.spec.modality_names if m != oom]
    has_oom, has_im = _present(batch, [oom]), _present(batch, im)
    b = batch_to_device(select_batch_rows(batch, has_oom), method.device)
    paired = has_im[has_oom]
    was = method.training
    method.eval()
    try:
        stars = [v for k, v in method.components(b, [oom]).items() if k.startswith("hstar:")]
        if not stars:
            raise MMIBError(f"method '{method.name}' exposes no optimal heads (components 'hstar:<k>')")
        agree = agreement_mask(stars).cpu()
        logits = method.predict(b, [oom]).cpu()
    finally:
        method.train(was)
    y = b["y"].cpu()
    if unpaired_only:  # the loss's roles on the training split: D never holds a labelled pair, anchors do
        return pull_stats(logits, y, ~agree & ~paired, (agree & ~paired) | paired)
    return pull_stats(logits, y, ~agree, agree)


@register_protocol("oom_groups", replace=True)
def oom_groups(ctx, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Per-class and per-group OOM accuracy and the test split's ``disagreement`` row (module docstring)."""
    from mmib.eval.oom import oom_modality_of, oom_predictions

    opts = {"split": "test", "groups": {k: list(v) for k, v in DEFAULT_GROUPS.items()}, **dict(options or {})}
    for k in opts:
        if k not in ("split", "groups"):
            raise UnknownNameError("option of protocol 'oom_groups'", str(k), ["split", "groups"])
    groups = opts["groups"]
    n_classes = int(ctx.spec.n_classes or 0)
    if not isinstance(groups, Mapping) or not all(
            isinstance(v, (list, tuple)) and v and all(isinstance(c, int) and 0 <= c < n_classes for c in v)
            for v in groups.values()):
        raise MMIBError(f"oom_groups: groups must map a name to a non-empty list of classes in [0, {n_classes}), "
                        f"got {groups!r}")
    res = {"protocol": "oom_groups", "options": opts, "plots": {}, "primary_metric": "accuracy", "notes": [],
           "rows": []}
    batch = ctx.dm.split_batch(opts["split"])
    with ctx.lock:
        pred, y = oom_predictions(ctx.method, batch, oom_modality_of(ctx.method))
    n = len(y)

    def row(rid: str, label: str, classes: Sequence[int]) -> None:
        sel = torch.isin(y, torch.tensor(list(classes)))
        acc = float((pred[sel] == y[sel]).double().mean()) if bool(sel.any()) else float("nan")
        res["rows"].append({"id": rid, "source": "method", "label": label, "classes": list(classes),
                            "metrics": {"accuracy": acc, "pred_share": float(torch.isin(pred, torch.tensor(
                                list(classes))).double().mean()), "true_share": float(sel.double().sum() / n)}})

    for c in range(n_classes):
        row(f"class/{c}", f"{ctx.method.name}: class {c}", [c])
    named = sorted({c for v in groups.values() for c in v})
    for name, classes in groups.items():
        row(f"group/{name}", f"{ctx.method.name}: classes {list(classes)} ({name})", classes)
    row("group/rest", f"{ctx.method.name}: the other classes", [c for c in range(n_classes) if c not in named])
    try:
        with ctx.lock:
            stats = method_pull_stats(ctx.method, batch)
        res["rows"].append({"id": "disagreement", "source": "method", "label": f"{ctx.method.name}: D vs A of h_k^*",
                            "metrics": stats})
    except MMIBError as e:
        res["notes"].append(f"no disagreement row: {e}")
    res["notes"].append(f"OOM accuracy from the OOM input alone on the {opts['split']} split, per class and group; "
                        "disagreement: D / A of the optimal heads, g = normalized geometric mean of A's posteriors")
    return res


class PullTrace(L.Callback):
    """Per-epoch :func:`method_pull_stats` of a COX-family run on its unpaired training OOM rows into
    ``<run folder>/pull_trace.json`` (evaluation only; module docstring). The history is checkpointed."""

    def __init__(self, file: str = PULL_FILE):
        super().__init__()
        if not isinstance(file, str) or not file or "/" in file:
            raise MMIBError(f"PullTrace: file must be a plain file name, got {file!r}")
        self.file = file
        self.history: list[dict[str, Any]] = []
        self._train = None

    @property
    def state_key(self) -> str:
        return f"PullTrace[{self.file}]"

    def state_dict(self) -> dict[str, Any]:
        return {"history": [dict(h) for h in self.history]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = [dict(h) for h in state_dict.get("history", [])]

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        from mmib.eval.oom import oom_state_of

        if self._train is None:
            dm = getattr(trainer, "datamodule", None)
            if dm is None or not hasattr(dm, "split_batch"):
                raise MMIBError("PullTrace: the run trains without an mmib data module (trainer.datamodule)")
            self._train = dm.split_batch("train")
        epoch = trainer.current_epoch
        rec: dict[str, Any] = {"epoch": float(epoch + 1), "phase": oom_state_of(pl_module, epoch).phase,
                               **method_pull_stats(pl_module, self._train, unpaired_only=True)}
        self.history = [h for h in self.history if h["epoch"] < rec["epoch"]] + [rec]
        if trainer.is_global_zero:
            from mmib.utils.io import atomic_write_json

            atomic_write_json(Path(trainer.default_root_dir) / self.file, {"split": "train", "history": self.history})


@register_protocol("pull_trace", replace=True)
def pull_trace(ctx, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One row per recorded epoch of the run's :class:`PullTrace` file (``pull/epoch-NN``, every PULL_METRICS)."""
    opts = {"file": PULL_FILE, **dict(options or {})}
    for k in opts:
        if k != "file":
            raise UnknownNameError("option of protocol 'pull_trace'", str(k), ["file"])
    res = {"protocol": "pull_trace", "options": opts, "plots": {}, "primary_metric": "kl_D_to_g", "notes": [],
           "rows": []}
    p = Path(ctx.run_dir) / opts["file"] if ctx.run_dir is not None else None
    if p is None or not p.is_file():
        res["notes"].append(f"no per-epoch pull trace ('{opts['file']}'): this variant runs without PullTrace")
        return res
    try:
        hist = json.loads(p.read_text())["history"]
    except (ValueError, KeyError, TypeError) as e:
        raise MMIBError(f"pull_trace: '{p}' holds no valid history ({e})") from None
    for rec in hist:
        e = int(rec["epoch"])
        phase = f" ({rec['phase']})" if isinstance(rec.get("phase"), str) else ""
        res["rows"].append({"id": f"pull/epoch-{e:02d}", "source": "method", "label": f"epoch {e}{phase}",
                            "metrics": {m: float(rec.get(m, float("nan"))) for m in PULL_METRICS}})
    res["notes"].append(f"per-epoch pull statistics of {len(hist)} epochs on the unpaired training OOM rows")
    return res
