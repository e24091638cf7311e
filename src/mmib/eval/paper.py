"""Paper vs ours: a recipe's ``paper`` block (the numbers a paper reports) checked and set beside this evaluation's
value of the same metric (:func:`check_paper_block`, :func:`paper_comparison`, :func:`paper_table`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from mmib.errors import MMIBError
from mmib.eval.protocols import BUILTIN_PROTOCOLS
from mmib.eval.tables import TableData

PAPER_KEYS = ("source", "metric", "reported", "notes", "scale", "protocol", "row")


def _paper_error(key: str, expected: str, got: Any) -> MMIBError:
    where = f"paper.{key}" if key else "paper"
    return MMIBError(f"{where}: expected {expected}, got {got!r} (the `paper` block of the run's config, "
                     "e.g. conf/experiment/<name>.yaml)")


def check_paper_block(paper: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a recipe's ``paper`` block and return it normalized: ``metrics`` (a list), ``reported``
    ({method: {metric: value}}), ``scale`` ({metric: factor}), ``protocol``, ``row``, ``source``, ``notes``.

    ``metric`` is one name or a list; with one name each ``reported`` value is a number, with a list each is a mapping
    {metric: number} (a subset is allowed). ``scale`` (a number or {metric: number}, default 1) converts our value to
    the paper's unit (100: the paper prints percent). ``protocol`` (default ``probe``) and ``row`` (a row id of that
    protocol's results, e.g. ``method/concat/mlp``; default: its first ``method`` row) say where our value is read.
    """
    if not isinstance(paper, Mapping):
        raise _paper_error("", "a mapping with source, metric, reported", paper)
    unknown = sorted(set(paper) - set(PAPER_KEYS))
    if unknown:
        raise MMIBError(f"paper: unknown key(s) {', '.join(map(str, unknown))}; valid: {', '.join(PAPER_KEYS)}")
    source = paper.get("source")
    if not isinstance(source, str) or not source.strip():
        raise _paper_error("source", "a non-empty string (paper short name, table/figure)", source)
    metric = paper.get("metric")
    multi = isinstance(metric, (list, tuple))
    metrics = [str(m) for m in metric] if multi else [metric]
    if not metrics or not all(isinstance(m, str) and m for m in metrics):
        raise _paper_error("metric", "a metric name or a non-empty list of names", metric)
    reported_in = paper.get("reported")
    if not isinstance(reported_in, Mapping) or not reported_in:
        raise _paper_error("reported", "a non-empty mapping method -> value", reported_in)
    reported: dict[str, dict[str, float]] = {}
    for meth, v in reported_in.items():
        if multi:
            if not isinstance(v, Mapping) or not v:
                raise _paper_error(f"reported.{meth}", f"a mapping {{metric: number}} over {metrics}", v)
            bad = [k for k in v if k not in metrics]
            if bad:
                raise _paper_error(f"reported.{meth}", f"metrics among {metrics}", list(v))
            vals = dict(v)
        else:
            vals = {metrics[0]: v}
        for k, x in vals.items():
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(float(x)):
                raise _paper_error(f"reported.{meth}" + (f".{k}" if multi else ""), "a finite number", x)
        reported[str(meth)] = {k: float(x) for k, x in vals.items()}
    scale_in = paper.get("scale", 1)
    if isinstance(scale_in, Mapping):
        bad = [k for k in scale_in if k not in metrics]
        if bad:
            raise _paper_error("scale", f"a number or a mapping over {metrics}", dict(scale_in))
        scale = {m: scale_in.get(m, 1) for m in metrics}
    else:
        scale = {m: scale_in for m in metrics}
    for f in scale.values():
        if isinstance(f, bool) or not isinstance(f, (int, float)) or not float(f) > 0:
            raise _paper_error("scale", "a positive number (100: the paper reports percent)", f)
    protocol = paper.get("protocol", "probe")
    if protocol not in BUILTIN_PROTOCOLS:
        raise _paper_error("protocol", f"one of {', '.join(BUILTIN_PROTOCOLS)}", protocol)
    row = paper.get("row")
    if row is not None and not isinstance(row, str):
        raise _paper_error("row", "a row id of the protocol's results (e.g. method/concat/mlp) or null", row)
    notes = paper.get("notes") or ""
    if not isinstance(notes, str):
        raise _paper_error("notes", "a string", notes)
    return {"source": source, "metrics": metrics, "reported": reported, "scale": {m: float(f) for m, f in scale.items()},
            "protocol": protocol, "row": row, "notes": notes.strip()}


def _ours_row(results: Mapping[str, Any], protocol: str, row_id: str | None) -> Mapping[str, Any] | None:
    for res in results.get("protocols", {}).values():
        if res.get("protocol") != protocol:
            continue
        for r in res.get("rows", []):
            if (r.get("id") == row_id) if row_id else (r.get("source") == "method"):
                return r
    return None


def paper_comparison(results: Mapping[str, Any]) -> dict[str, Any] | None:
    """The paper's reported numbers next to ours, from the ``paper`` block of the run's config (``None`` without
    one): ``{source, metrics, scale, reported, ours: {method, row, values}, notes}``; ``values`` holds our metric in
    the paper's unit (× scale) or ``None`` where this evaluation has no such value."""
    paper = (results.get("config") or {}).get("paper")
    if not paper:
        return None
    p = check_paper_block(paper)
    row = _ours_row(results, p["protocol"], p["row"])
    values: dict[str, float | None] = {}
    for m in p["metrics"]:
        v = (row or {}).get("metrics", {}).get(m)
        values[m] = None if v is None or not math.isfinite(float(v)) else float(v) * p["scale"][m]
    return {**p, "ours": {"method": results["method"]["name"], "row": row.get("id") if row else None,
                          "values": values}}


def _decimals(values: Sequence[float]) -> int:
    """The most decimals among the paper's printed numbers (at least 2): our values are shown the same way."""
    out = 2
    for v in values:
        text = repr(float(v))
        if "e" not in text and "." in text:
            out = max(out, len(text.split(".")[1].rstrip("0")))
    return out


def paper_table(results: Mapping[str, Any]) -> TableData | None:
    """The "paper vs ours" table: one row per method the paper reports, then ``ours (<method>)``."""
    c = paper_comparison(results)
    if c is None:
        return None
    metrics = c["metrics"]
    dec = {m: _decimals([v[m] for v in c["reported"].values() if m in v]) for m in metrics}
    headers = ["method", *[m + (f" (×{c['scale'][m]:g})" if c["scale"][m] != 1 else "") for m in metrics]]
    rows = [[f"paper: {meth}", *[f"{v[m]:.{dec[m]}f}" if m in v else "—" for m in metrics]]
            for meth, v in c["reported"].items()]
    ours = c["ours"]
    rows.append([f"ours ({ours['method']})",
                 *["—" if ours["values"][m] is None else f"{ours['values'][m]:.{dec[m]}f}" for m in metrics]])
    where = (f"ours: {c['protocol']} row `{ours['row']}` of this evaluation" if ours["row"] else
             f"ours: no {c['protocol']} row " + (f"`{c['row']}` " if c["row"] else "") + "in this evaluation")
    notes = [where + ("; scaled to the paper's unit" if any(f != 1 for f in c["scale"].values()) else "")]
    if c["notes"]:
        notes.append(c["notes"])
    return TableData(f"Paper vs ours: {c['source']}", headers, rows, notes)

