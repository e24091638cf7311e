"""The table primitives of the evaluation's reports: :class:`TableData` (a table as text cells), :func:`fmt` (one
value), :func:`md_table` (Markdown), :func:`metric_names` and :func:`generic_tables` (rows × metrics, the tables of a
protocol without its own builder). Each protocol builds its own tables from these
(:attr:`mmib.eval.protocols.base.Protocol.tables`)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class TableData:
    """A table as text cells: the shape both the Markdown and the console renderers take."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str]


def fmt(v: Any, metric: str = "") -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if metric.endswith("rank"):
            return f"{v:.1f}"
        return f"{v:.4f}"
    return str(v)


def md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def esc(s: str) -> str:
        return str(s).replace("|", "\\|")

    out = ["| " + " | ".join(esc(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


# ------------------------------------------------------------------------------------------------ per protocol
def metric_names(rows: Sequence[Mapping[str, Any]], drop: Sequence[str] = ()) -> list[str]:
    names: list[str] = []
    for r in rows:
        for k in r["metrics"]:
            if k not in names and k not in drop:
                names.append(k)
    return names


def generic_tables(res: Mapping[str, Any]) -> list[TableData]:
    """One table of rows × metrics: for protocols without their own builder (study analyses registered with
    :func:`mmib.bench.extensions.register_protocol`)."""
    rows = res.get("rows") or []
    if not rows:
        return []
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r["metrics"] if c not in cols]
    body = [[r.get("label") or r["id"], *[fmt(r["metrics"][c], c) if c in r["metrics"] else "—" for c in cols]]
            for r in rows]
    return [TableData(f"{res.get('name', res['protocol'])}", ["row", *cols], body, list(res.get("notes") or []))]
