"""``subsets``: pretrain once with all modalities, probe every non-empty subset of modalities (2^M − 1; OVA-IB
Tables 2 and 5–11): a table and a heatmap. Linear probes of the concatenated representation are trained together
(one feature block per modality) when each modality's representation does not depend on the others requested."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mmib.errors import MMIBError
from mmib.eval.protocols.base import (
    COMPARE_PRIMARY,
    Protocol,
    check_probe_kind,
    new_result,
    parse_options,
    primary_metric,
)
from mmib.eval.protocols.probe import _own_prediction_row, _probe_row, _row_of
from mmib.eval.tables import TableData, fmt, metric_names

if TYPE_CHECKING:
    from mmib.eval.protocols.context import EvalContext


@dataclass
class SubsetOptions:
    """``subsets``: one probe per non-empty subset of modalities (``sizes``: only subsets of these sizes; default
    all 2^M − 1)."""

    probe: str = "linear"
    representation: str = "concat"
    baseline_raw: bool = False
    own_predictions: bool = True
    sizes: list[int] | None = None
    probe_options: dict[str, Any] = field(default_factory=dict)


def _modality_blocks_usable(ctx: EvalContext) -> bool:
    """Whether a subset's ``concat`` representation is the concatenation of the per-modality blocks extracted once
    with every modality: no split drops a row for a missing modality, and on a few train rows each modality's
    representation does not depend on which other modalities were requested."""
    import torch

    from mmib.data.dataset import batch_to_device

    mods = list(ctx.modalities)
    for split in ("train", "val", "test"):
        if len(ctx.dm.indices[split]) and ctx.features(split, mods, [f"rep:{m}" for m in mods]).n_dropped:
            return False
    batch = batch_to_device(ctx.dm.dataset.get_batch(ctx.dm.indices["train"][:64]), ctx.method.device)
    with torch.no_grad(), ctx.lock:  # the method, one call at a time beside other protocols' extractions
        together = ctx.method.embed(batch, mods, space="representation")
        for m in mods:
            alone = ctx.method.embed(batch, [m], space="representation")[m]
            if alone.shape != together[m].shape or not torch.allclose(alone, together[m], rtol=1e-5, atol=1e-6):
                return False
    return True


def _batched_subset_rows(ctx: EvalContext, opt: SubsetOptions, subsets: list[tuple[str, ...]],
                         sources: list[str]) -> dict[tuple[tuple[str, ...], str], dict] | None:
    """The linear subset probes of every source trained together (:func:`fit_linear_probes`, one feature block per
    modality), or None when that does not apply (another probe or representation, missing modalities, or
    representations that depend on the requested subset): then each subset is probed on its own."""
    from mmib.eval.probe import ProbeConfig, fit_linear_probes

    if opt.probe != "linear" or opt.representation != "concat" or not _modality_blocks_usable(ctx):
        return None
    mods = list(ctx.modalities)
    cfg = ProbeConfig.from_options("linear", opt.probe_options, seed=ctx.seed)
    problems = [tuple(mods.index(m) for m in sub) for sub in subsets]
    has_val = len(ctx.dm.indices["val"]) > 0
    out: dict[tuple[tuple[str, ...], str], dict] = {}
    for source in sources:
        kind = "rep" if source == "method" else "raw"
        names = [f"{kind}:{m}" for m in mods]
        tr = ctx.features("train", mods, names)
        va = ctx.features("val", mods, names) if has_val else None
        te = ctx.features("test", mods, names)
        def fit(tr=tr, va=va, te=te, names=names) -> list:
            return fit_linear_probes([tr.features[k] for k in names], tr.y,
                                     [va.features[k] for k in names] if va else None, va.y if va else None,
                                     [te.features[k] for k in names], te.y, problems, ctx.spec.task,
                                     ctx.spec.n_classes, cfg)

        inputs = [(s, mods, k) for s, sf in (("train", tr), ("val", va), ("test", te)) if sf is not None
                  for k in names]
        settings = {"fit": "fit_linear_probes", "problems": problems, "config": cfg, "task": ctx.spec.task,
                    "n_classes": ctx.spec.n_classes}
        results = ctx.cached_probes(inputs, [tr.y, va.y if va else None, te.y], settings, fit)
        rep = opt.representation if source == "method" else "raw"
        prefix = ctx.method.name if source == "method" else "raw features"
        for sub, r in zip(subsets, results):
            out[(sub, source)] = _row_of(r, source, rep, "linear", prefix, {"subset": list(sub), "size": len(sub)})
    return out


def modality_subsets(modalities: Sequence[str], sizes: Sequence[int] | None = None) -> list[tuple[str, ...]]:
    """Every non-empty subset of the modalities (2^M − 1), or those of the given sizes; by size, then in the data
    set's order."""
    m = len(modalities)
    sizes = list(range(1, m + 1)) if sizes is None else sorted({int(k) for k in sizes})
    bad = [k for k in sizes if not 1 <= k <= m]
    if bad or not sizes:
        raise MMIBError(f"subsets: sizes must lie in 1..{m} (the number of modalities), got {sizes}")
    return [c for k in sizes for c in itertools.combinations(modalities, k)]


def run_subsets(ctx: EvalContext, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Modality-subset protocol: the pretrained method evaluated on every non-empty subset of its modalities."""
    from mmib.eval.probe import PROBE_DESCRIPTIONS
    from mmib.eval.representations import MissingCapabilityError, check_representation

    opt = parse_options(SubsetOptions, options, "subsets")
    check_probe_kind(opt.probe)
    res = new_result("subsets", opt)
    if ctx.spec.task == "none":
        res["notes"].append(f"skipped: data set '{ctx.spec.name}' has no labels (task none)")
        return res
    try:
        check_representation(ctx.method, opt.representation, ctx.modalities)
    except MissingCapabilityError as e:
        res["notes"].append(f"skipped: {e}")
        return res
    subsets = modality_subsets(ctx.modalities, opt.sizes)
    sources = ["method"] + (["raw"] if opt.baseline_raw else [])
    own = opt.own_predictions and ctx.capable("predict")
    with ctx.reporter.task(f"subsets ({len(subsets)})", total=len(subsets)) as advance:
        batched = _batched_subset_rows(ctx, opt, subsets, sources)
        for sub in subsets:
            name = "+".join(sub)
            extra = {"subset": list(sub), "size": len(sub)}
            for source in sources:
                rep = opt.representation if source == "method" else "raw"
                prefix = ctx.method.name if source == "method" else "raw features"
                row = (batched[(sub, source)] if batched is not None
                       else _probe_row(ctx, source, rep, opt.probe, sub, opt.probe_options, prefix, extra))
                row["id"] = f"{source}/{name}/{opt.probe}"
                row["label"] = f"{prefix} {name}"
                res["rows"].append(row)
            if own:
                res["rows"].append(_own_prediction_row(ctx, sub, f"method/{name}/own", extra))
            if 1 < len(sub) < len(ctx.modalities):  # subsets are visited once; keep memory flat (the full set
                ctx.forget(sub)                        # stays: other protocols use it)
            advance()
    res["modalities"] = list(ctx.modalities)
    res["primary_metric"] = primary_metric(ctx.spec.task)
    res["probe_description"] = PROBE_DESCRIPTIONS[ctx.spec.task][opt.probe]
    pp = ctx.plot_path("subsets_heatmap")
    if pp is not None and res["rows"]:
        from mmib.eval.plots import plot_subset_heatmap

        ctx.draw(plot_subset_heatmap, copy.deepcopy(res), pp[0])  # beside the next protocols
        res["plots"]["subsets_heatmap"] = pp[1]
    return res


def subset_tables(res: Mapping[str, Any]) -> list[TableData]:
    rows = res["rows"]
    if not rows:
        return []
    metrics = metric_names(rows)
    primary = res.get("primary_metric", metrics[0])
    sources: list[str] = []
    table: dict[str, dict[str, Mapping[str, Any]]] = {}
    order: list[str] = []
    for r in rows:
        src = "own" if r["probe"] == "own" else r["source"]
        if src not in sources:
            sources.append(src)
        s = "+".join(r["subset"])
        if s not in table:
            table[s] = {}
            order.append(s)
        table[s][src] = r
    headers = ["subset", "size"]
    cols: list[tuple[str, str]] = []
    for src in sources:
        ms = metrics if src == "method" else [primary]
        cols += [(src, m) for m in ms]
    name = {"method": "", "raw": "raw ", "own": "own predictions "}
    headers += [f"{name[src]}{m}" for src, m in cols]
    body = []
    for s in order:
        line = [s, str(len(s.split("+")))]
        for src, m in cols:
            r = table[s].get(src)
            line.append(fmt(r["metrics"].get(m), m) if r else "—")
        body.append(line)
    chance = rows[0]["chance"].get(primary)
    notes = [f"probe: {res.get('probe_description', rows[0].get('probe_description'))}; chance {primary} "
             f"(majority class of train): {fmt(chance, primary)}"]
    return [TableData(f"{res['name']}: every subset of modalities (pretrained once with all)", headers, body, notes)]


SUBSETS = Protocol("subsets", run_subsets, SubsetOptions, subset_tables, compare=COMPARE_PRIMARY,
                   plots=("subsets_heatmap",), concurrent=True)
