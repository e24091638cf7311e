"""``probe``: CE-trained linear probe and/or the papers' 4-layer MLP on frozen representations (``concat`` | ``fused``
| ``component:<name>`` | ``components``), the raw-feature baseline, and the method's own predictions when it has
``predict``. Also the row helpers the other probing protocols share (a probe row, an own-predictions row, the
expansion of ``components``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mmib.eval.protocols.base import (
    COMPARE_ALL,
    Protocol,
    check_probe_kind,
    new_result,
    parse_options,
    primary_metric,
)
from mmib.eval.tables import TableData, fmt, metric_names

if TYPE_CHECKING:
    from mmib.eval.probe import ProbeResult
    from mmib.eval.protocols.context import EvalContext


@dataclass
class ProbeOptions:
    """``probe``: probes on frozen representations of all (or the given) modalities. ``representation`` (singular)
    is an alias of ``representations``."""

    ALIASES: ClassVar[dict[str, str]] = {"representation": "representations"}

    probes: list[str] = field(default_factory=lambda: ["linear"])
    representations: list[str] = field(default_factory=lambda: ["concat"])
    modalities: list[str] | None = None
    baseline_raw: bool = True
    own_predictions: bool = True
    probe_options: dict[str, Any] = field(default_factory=dict)


def _probe_row(ctx: EvalContext, source: str, rep: str, probe: str, mods: Sequence[str], options: dict,
               label_prefix: str, extra: dict | None = None) -> dict[str, Any]:
    from mmib.eval.probe import ProbeConfig, fit_probe

    tr = ctx.features("train", mods, [rep])
    va = ctx.features("val", mods, [rep]) if len(ctx.dm.indices["val"]) else None
    te = ctx.features("test", mods, [rep])
    cfg = ProbeConfig.from_options(probe, options, seed=ctx.seed)

    def fit() -> list[ProbeResult]:
        return [fit_probe(tr.features[rep], tr.y, va.features[rep] if va else None, va.y if va else None,
                          te.features[rep], te.y, ctx.spec.task, ctx.spec.n_classes, cfg)]

    inputs = [(s, mods, rep) for s, sf in (("train", tr), ("val", va), ("test", te)) if sf is not None]
    settings = {"fit": "fit_probe", "config": cfg, "task": ctx.spec.task, "n_classes": ctx.spec.n_classes}
    r = ctx.cached_probes(inputs, [tr.y, va.y if va else None, te.y], settings, fit)[0]
    return _row_of(r, source, rep, probe, label_prefix, extra)


def _row_of(r: ProbeResult, source: str, rep: str, probe: str, label_prefix: str, extra: dict | None = None) -> dict:
    from mmib.eval.metrics import finite_or_raise

    rep_name = "concat" if rep == "raw" else rep
    return {"id": f"{source}/{rep_name}/{probe}", "source": source, "label": f"{label_prefix} {rep_name}",
            "representation": rep_name, "probe": probe, "probe_description": r.description, "dim": r.dim,
            "metrics": finite_or_raise(r.metrics, f"probe on {label_prefix} {rep_name}"), "chance": r.chance,
            "epochs": r.epochs, "n_train": r.n_train, "n_val": r.n_val, "n_test": r.n_test, **(extra or {})}


def _own_prediction_row(ctx: EvalContext, mods: Sequence[str], row_id: str, extra: dict | None = None) -> dict:
    from mmib.eval.metrics import (
        classification_chance,
        classification_metrics,
        finite_or_raise,
        regression_chance,
        regression_metrics,
    )

    te = ctx.features("test", mods, ["predict"])
    tr = ctx.features("train", mods, ["predict"])
    out = te.features["predict"]
    if ctx.spec.task == "classification":
        pred = out.argmax(1) if out.ndim == 2 and out.shape[1] > 1 else out.reshape(-1).astype(np.int64)
        metrics, chance = classification_metrics(te.y, pred), classification_chance(tr.y, te.y)
    else:
        metrics, chance = regression_metrics(te.y, out), regression_chance(tr.y, te.y)
    return {"id": row_id, "source": "method", "label": f"{ctx.method.name} own predictions",
            "representation": "predict", "probe": "own", "probe_description": "the method's own predictions (predict)",
            "metrics": finite_or_raise(metrics, "own predictions"), "chance": chance, "n_test": len(te.y),
            **(extra or {})}


def _expand_representations(ctx: EvalContext, reps: Sequence[str], notes: list[str]) -> list[str]:
    from mmib.eval.representations import MissingCapabilityError, check_representation

    out: list[str] = []
    for rep in reps:
        if rep == "components":
            if not ctx.capable("components"):
                notes.append(f"components skipped: method '{ctx.method.name}' has no named components")
                continue
            out += [f"component:{c}" for c in ctx.component_names()]
            continue
        try:
            check_representation(ctx.method, rep, ctx.modalities)
        except MissingCapabilityError as e:
            notes.append(f"{rep} skipped: {e}")
            continue
        out.append(rep)
    return out


def run_probe(ctx: EvalContext, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Probe protocol: every (representation, probe) on the test split, plus raw features and own predictions."""
    opt = parse_options(ProbeOptions, options, "probe")
    for p in opt.probes:
        check_probe_kind(p)
    res = new_result("probe", opt)
    if ctx.spec.task == "none":
        res["notes"].append(f"skipped: data set '{ctx.spec.name}' has no labels (task none)")
        return res
    mods = ctx.spec.check_modalities(opt.modalities)
    reps = _expand_representations(ctx, opt.representations, res["notes"])
    jobs = [("method", r, p) for r in reps for p in opt.probes]
    if opt.baseline_raw:
        jobs += [("raw", "raw", p) for p in opt.probes]
    with ctx.reporter.task("probes", total=len(jobs)) as advance:
        for source, rep, p in jobs:
            prefix = ctx.method.name if source == "method" else "raw features"
            res["rows"].append(_probe_row(ctx, source, rep, p, mods, opt.probe_options, prefix))
            advance()
    if opt.own_predictions and ctx.capable("predict"):
        res["rows"].append(_own_prediction_row(ctx, mods, "method/predict/own"))
    res["modalities"] = list(mods)
    res["primary_metric"] = primary_metric(ctx.spec.task)
    return res


def probe_tables(res: Mapping[str, Any]) -> list[TableData]:
    rows = res["rows"]
    if not rows:
        return []
    metrics = metric_names(rows)
    primary = res.get("primary_metric", metrics[0])
    headers = ["representation", "probe", "dim", *metrics, f"chance {primary}"]
    body = [[r["label"], r["probe_description"], fmt(r.get("dim")), *[fmt(r["metrics"].get(m), m) for m in metrics],
             fmt(r["chance"].get(primary), primary)] for r in rows]
    mods = res.get("modalities")
    title = f"{res['name']}: probes on frozen representations" + (f" ({'+'.join(mods)})" if mods else "")
    return [TableData(title, headers, body, [])]


PROBE = Protocol("probe", run_probe, ProbeOptions, probe_tables, compare=COMPARE_ALL, concurrent=True)
