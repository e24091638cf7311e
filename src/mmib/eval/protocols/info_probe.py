"""``info_probe``: representation × ground-truth latent matrix of probe accuracy (R² for continuous latents) with
chance levels: which information each representation holds and what leaks where."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mmib.errors import MMIBError, UnknownNameError
from mmib.eval.protocols.base import Protocol, check_probe_kind, new_result, parse_options
from mmib.eval.protocols.probe import _expand_representations
from mmib.eval.tables import TableData, fmt

if TYPE_CHECKING:
    from mmib.eval.protocols.context import EvalContext
    from mmib.eval.representations import SplitFeatures


@dataclass
class InfoProbeOptions:
    """``info_probe``: a probe per (representation, ground-truth latent). ``representations: auto`` = each
    modality's representation, their concatenation, the fused one and every component where the method has them."""

    latents: list[str] | None = None
    representations: str | list[str] = "auto"
    probe: str = "linear"
    include_raw: bool = True
    include_label: bool = True
    probe_options: dict[str, Any] = field(default_factory=dict)
    # probe a latent on the rows where other latents take given values only, e.g. {A: {e: 1}}: a quantity that is
    # expressed on task trials alone (an amplitude, a delay) is probed on the task trials of every split
    where: dict[str, dict[str, Any]] = field(default_factory=dict)


def _latent_target(name: str, values: np.ndarray, n_values: int) -> tuple[np.ndarray, str]:
    if n_values and n_values > 0:
        v = np.asarray(values)
        if v.ndim != 1:
            raise MMIBError(f"latent '{name}' is declared discrete ({n_values} values) but has shape {v.shape}; "
                            "expected (N,)")
        if v.dtype.kind == "f":
            if not np.all(np.isfinite(v)) or not np.all(v == np.round(v)):
                raise MMIBError(f"latent '{name}' is declared discrete but holds non-integer values")
            v = v.astype(np.int64)
        return v.astype(np.int64), "classification"
    v = np.asarray(values, dtype=np.float32)
    return v.reshape(len(v), -1), "regression"


def run_info_probe(ctx: EvalContext, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Information probes: which ground-truth latent each representation holds (and leaks)."""
    from mmib.eval.probe import PROBE_DESCRIPTIONS, ProbeConfig, fit_probe

    opt = parse_options(InfoProbeOptions, options, "info_probe")
    check_probe_kind(opt.probe)
    res = new_result("info_probe", opt)
    declared = dict(ctx.spec.latents)
    targets = list(opt.latents) if opt.latents is not None else list(declared)
    for t in targets:
        if t not in declared:
            raise UnknownNameError(f"latent of data set '{ctx.spec.name}'", t, list(declared))
    columns = [(t, declared[t]) for t in targets]
    if opt.include_label and ctx.spec.task != "none":
        columns.append(("y", (ctx.spec.n_classes or 0) if ctx.spec.task == "classification" else 0))
    if not isinstance(opt.where, Mapping):
        raise MMIBError(f"info_probe.where: expected a mapping latent -> {{latent: value}}, got {opt.where!r}")
    for lat, cond in opt.where.items():
        if lat not in [c[0] for c in columns]:
            raise UnknownNameError("latent of info_probe.where", lat, [c[0] for c in columns])
        if not isinstance(cond, Mapping) or not cond:
            raise MMIBError(f"info_probe.where.{lat}: expected a non-empty mapping {{latent: value}}, got {cond!r}")
        for c in cond:
            if c not in declared:
                raise UnknownNameError(f"latent of info_probe.where.{lat}", c, list(declared))
    if not declared:
        res["notes"].append(f"skipped: data set '{ctx.spec.name}' has no ground-truth latents")
        return res
    if opt.representations == "auto":
        reps = [f"rep:{m}" for m in ctx.modalities] + ["concat"]
        reps += ["fused"] if ctx.capable("fuse") else []
        reps += [f"component:{c}" for c in ctx.component_names()] if ctx.capable("components") else []
    else:
        reps = _expand_representations(ctx, [opt.representations] if isinstance(opt.representations, str)
                                        else opt.representations, res["notes"])
    if opt.include_raw:
        reps += [f"raw:{m}" for m in ctx.modalities] + ["raw"]
    mods = ctx.modalities
    tr, te = ctx.features("train", mods, reps), ctx.features("test", mods, reps)
    has_val = len(ctx.dm.indices["val"]) > 0
    va = ctx.features("val", mods, reps) if has_val else None
    values = np.full((len(reps), len(columns)), np.nan)
    chance_row: dict[str, float] = {}
    kinds: dict[str, str] = {}
    with ctx.reporter.task(f"information probes ({len(reps)}×{len(columns)})", total=len(reps) * len(columns)) as advance:
        for j, (lat, n_values) in enumerate(columns):
            def target(sf: SplitFeatures, lat=lat, n_values=n_values) -> tuple[np.ndarray, str]:
                if lat == "y":
                    y = sf.y
                    return (y, ctx.spec.task) if ctx.spec.task == "classification" else (y.astype(np.float32), "regression")
                if lat not in sf.latents:
                    raise MMIBError(f"latent '{lat}' is declared in the spec but missing from the batches")
                return _latent_target(lat, sf.latents[lat], n_values)

            cond = dict(opt.where.get(lat) or {})

            def rows(sf: SplitFeatures, split: str, lat=lat, cond=cond) -> np.ndarray | None:
                if not cond:
                    return None
                keep = np.ones(len(sf.y if sf.y is not None else next(iter(sf.features.values()))), dtype=bool)
                for c, value in cond.items():
                    keep &= np.asarray(sf.latents[c]).reshape(-1) == value
                if not keep.any():
                    raise MMIBError(f"info_probe.where.{lat}: no {split} row has "
                                    + ", ".join(f"{c} = {v!r}" for c, v in cond.items()))
                return keep

            ktr, kte = rows(tr, "train"), rows(te, "test")
            kva = rows(va, "val") if va is not None else None

            def sub(x: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
                return x if keep is None else x[keep]

            ytr, task = target(tr)
            yte, _ = target(te)
            yva = target(va)[0] if va is not None else None
            ytr, yte = sub(ytr, ktr), sub(yte, kte)
            yva = sub(yva, kva) if yva is not None else None
            kinds[lat] = task
            score_key = "accuracy" if task == "classification" else "r2"
            for i, rep in enumerate(reps):
                cfg = ProbeConfig.from_options(opt.probe, opt.probe_options, seed=ctx.seed)
                n_cls = n_values if task == "classification" and n_values else None

                args = (sub(tr.features[rep], ktr), ytr, sub(va.features[rep], kva) if va is not None else None,
                        yva, sub(te.features[rep], kte), yte, task, n_cls, cfg)

                def fit(args=args) -> list:
                    return [fit_probe(*args)]

                inputs = [("train", mods, rep), ("test", mods, rep)] + ([("val", mods, rep)] if va is not None else [])
                r = ctx.cached_probes(inputs, [ytr, yte, yva, ktr, kte, kva],
                                      {"fit": "fit_probe", "config": cfg, "task": task, "n_classes": n_cls}, fit)[0]
                score = r.metrics[score_key]
                chance = r.chance[score_key] if task == "classification" else 0.0
                above = (score - chance) / (1 - chance) if task == "classification" and chance < 1 else score
                source = "raw" if rep.startswith("raw") else "method"
                res["rows"].append({
                    "id": f"{rep}/{lat}", "source": source, "representation": rep, "latent": lat, "task": task,
                    "label": f"{ctx.method.name if source == 'method' else 'raw'} {rep} → {lat}",
                    "probe": opt.probe, "probe_description": r.description,
                    "metrics": {**r.metrics, "score": score, "above_chance": above}, "chance": {"score": chance},
                    "dim": r.dim, **({"where": cond, "n_test": int(len(yte))} if cond else {})})
                values[i, j] = score
                chance_row[lat] = chance
                advance()
    for lat, cond in opt.where.items():
        res["notes"].append(f"{lat}: probed on the rows with " + ", ".join(f"{c} = {v!r}" for c, v in cond.items())
                            + " only (every split)")
    res["matrix"] = {"representations": reps, "latents": [c[0] for c in columns], "values": values.tolist(),
                     "chance": chance_row, "kinds": kinds,
                     "score": "accuracy (discrete latents) / R² (continuous latents)"}
    res["probe_description"] = PROBE_DESCRIPTIONS["classification"][opt.probe] + " / " + \
        PROBE_DESCRIPTIONS["regression"][opt.probe]
    res["primary_metric"] = "score"
    pp = ctx.plot_path("info_probe_matrix")
    if pp is not None:
        from mmib.eval.plots import plot_probe_matrix

        ctx.draw(plot_probe_matrix, copy.deepcopy(res["matrix"]), pp[0],  # beside the next protocols
                 title=f"{ctx.method.name}: information probes ({opt.probe})")
        res["plots"]["info_probe_matrix"] = pp[1]
    return res


def info_tables(res: Mapping[str, Any]) -> list[TableData]:
    m = res.get("matrix")
    if not m:
        return []
    lats = m["latents"]
    headers = ["representation"] + [f"{lat} ({'acc' if m['kinds'].get(lat) == 'classification' else 'R²'}, "
                                    f"chance {fmt(float(m['chance'].get(lat, 0)))})" for lat in lats]
    body = [[rep] + [fmt(v) for v in vals] for rep, vals in zip(m["representations"], m["values"])]
    return [TableData(f"{res['name']}: information probes ({res.get('probe_description', '')})", headers, body, [])]


INFO_PROBE = Protocol("info_probe", run_info_probe, InfoProbeOptions, info_tables, compare=("score",),
                      plots=("info_probe_matrix",), concurrent=True)
