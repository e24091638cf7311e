"""Aggregation of bench runs: mean ± std over seeds of every metric of every protocol row, and the leaderboard.

Each run's ``results.json`` (written by :func:`mmib.eval.evaluate`) carries ``bench: {variant, data, seed}``; rows
are matched across seeds by their protocol name and row ``id``. The std is the sample standard deviation
(``ddof=1``) over seeds; with a single seed it is reported as NaN (shown as "—"), never as a fake 0.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from mmib.errors import MMIBError
from mmib.eval.metrics import higher_is_better


def flatten_results(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One record per (protocol, row, metric) of one evaluation."""
    out = []
    for pname, res in results["protocols"].items():
        for row in res.get("rows", []):
            for metric, value in row["metrics"].items():
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    continue
                out.append({"protocol": pname, "kind": res["protocol"], "row": row["id"], "label": row.get("label", ""),
                            "source": row.get("source", ""), "metric": metric, "value": float(value),
                            "chance": (row.get("chance") or {}).get(metric)})
    return out


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (ddof=1; NaN for one value). NaN values are an error, not silently averaged."""
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        raise MMIBError("aggregate: no values")
    if np.isnan(a).any():
        return float("nan"), float("nan")
    return float(a.mean()), float(a.std(ddof=1)) if a.size > 1 else float("nan")


def aggregate(run_results: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Group the runs by (variant, data set) and every (protocol, row, metric) → mean, std, n, per-seed values."""
    groups: dict[tuple, dict[str, Any]] = {}
    for res in run_results:
        b = res.get("bench")
        if not b:
            raise MMIBError("aggregate: a results.json without its 'bench' identity (variant, data, seed)")
        for rec in flatten_results(res):
            key = (b["variant"], b["data"], rec["protocol"], rec["row"], rec["metric"])
            g = groups.setdefault(key, {"variant": b["variant"], "method": b.get("method"), "data": b["data"],
                                        "protocol": rec["protocol"], "kind": rec["kind"], "row": rec["row"],
                                        "label": rec["label"], "source": rec["source"], "metric": rec["metric"],
                                        "chance": rec["chance"], "seeds": [], "values": []})
            if b["seed"] in g["seeds"]:
                raise MMIBError(f"aggregate: seed {b['seed']} of {b['variant']} on {b['data']} appears twice")
            g["seeds"].append(b["seed"])
            g["values"].append(rec["value"])
    out = []
    for g in groups.values():
        order = np.argsort(g["seeds"])
        g["seeds"] = [g["seeds"][i] for i in order]
        g["values"] = [g["values"][i] for i in order]
        g["mean"], g["std"] = mean_std(g["values"])
        g["n"] = len(g["values"])
        out.append(g)
    return out


def default_leaderboard_spec(run_results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The first probe protocol's ``method/concat/<probe>`` row and its primary metric; else the first protocol's first
    method row."""
    if not run_results:
        return {}
    protos = run_results[0]["protocols"]
    order = sorted(protos, key=lambda n: (protos[n]["protocol"] != "probe", list(protos).index(n)))
    for pname in order:
        res = protos[pname]
        rows = [r for r in res.get("rows", []) if r.get("source") == "method"]
        if not rows:
            continue
        row = next((r for r in rows if r["id"].startswith("method/concat/")), rows[0])
        metric = res.get("primary_metric") or next(iter(row["metrics"]))
        return {"protocol": pname, "row": row["id"], "metric": metric}
    return {}


def leaderboard(agg: Sequence[Mapping[str, Any]], spec: Mapping[str, Any], variants: Sequence[str],
                data: Sequence[str]) -> dict[str, Any]:
    """Entries (variant, data) of the chosen (protocol, row, metric), ranked per data set (1 = best)."""
    if not spec:
        return {"entries": []}
    for k in ("protocol", "row", "metric"):
        if k not in spec:
            raise MMIBError(f"leaderboard: '{k}' is missing (expected protocol, row, metric)")
    hib = higher_is_better(spec["metric"])
    entries = []
    for d in data:
        cand = []
        for v in variants:
            g = next((a for a in agg if a["variant"] == v and a["data"] == d and a["protocol"] == spec["protocol"]
                      and a["row"] == spec["row"] and a["metric"] == spec["metric"]), None)
            if g is not None:
                cand.append({"variant": v, "data": d, "mean": g["mean"], "std": g["std"], "n": g["n"],
                             "values": g["values"], "chance": g.get("chance")})
        finite = [c for c in cand if not math.isnan(c["mean"])]
        finite.sort(key=lambda c: -c["mean"] if hib else c["mean"])
        for i, c in enumerate(finite, start=1):
            c["rank"] = i
        entries += finite + [c for c in cand if math.isnan(c["mean"])]
    return {**dict(spec), "higher_is_better": hib, "entries": entries}
