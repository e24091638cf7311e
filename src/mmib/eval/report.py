"""Reports: every evaluation's ``results.json`` rendered as Markdown tables with its plots, on the console (rich), and
several runs compared side by side (``mmib report RUN_DIR [RUN_DIR...]``)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmib.errors import MMIBError

RESULTS_KIND = "mmib-eval"
RETRIEVAL_COLUMNS = ("mAP", "R@1", "R@5", "R@10", "MRR", "median_rank")


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
def _metric_names(rows: Sequence[Mapping[str, Any]], drop: Sequence[str] = ()) -> list[str]:
    names: list[str] = []
    for r in rows:
        for k in r["metrics"]:
            if k not in names and k not in drop:
                names.append(k)
    return names


def _probe_tables(res: Mapping[str, Any]) -> list[TableData]:
    rows = res["rows"]
    if not rows:
        return []
    metrics = _metric_names(rows)
    primary = res.get("primary_metric", metrics[0])
    headers = ["representation", "probe", "dim", *metrics, f"chance {primary}"]
    body = [[r["label"], r["probe_description"], fmt(r.get("dim")), *[fmt(r["metrics"].get(m), m) for m in metrics],
             fmt(r["chance"].get(primary), primary)] for r in rows]
    mods = res.get("modalities")
    title = f"{res['name']}: probes on frozen representations" + (f" ({'+'.join(mods)})" if mods else "")
    return [TableData(title, headers, body, [])]


def _subset_tables(res: Mapping[str, Any]) -> list[TableData]:
    rows = res["rows"]
    if not rows:
        return []
    metrics = _metric_names(rows)
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


def _retrieval_tables(res: Mapping[str, Any]) -> list[TableData]:
    rows = res["rows"]
    if not rows:
        return []
    cols = [c for c in RETRIEVAL_COLUMNS if c in rows[0]["metrics"]] or list(rows[0]["metrics"])
    headers = ["scorer", "queries → candidates", "N", *cols]
    body = []
    last_dir = None
    for r in rows:
        body.append([r["source"] if r["source"] == "raw" else r["label"].split(" ")[0], r["direction"].replace("->", " → "),
                     str(r["n_candidates"]), *[fmt(r["metrics"][c], c) for c in cols]])
        nxt = rows.index(r) + 1
        last_dir = r["direction"]
        if nxt == len(rows) or rows[nxt]["direction"] != last_dir:
            body.append(["chance", r["direction"].replace("->", " → "), str(r["n_candidates"]),
                         *[fmt(r["chance"][c], c) for c in cols]])
    return [TableData(f"{res['name']}: cross-modal retrieval (one relevant candidate per query: mAP = MRR)",
                      headers, body, [])]


def _info_tables(res: Mapping[str, Any]) -> list[TableData]:
    m = res.get("matrix")
    if not m:
        return []
    lats = m["latents"]
    headers = ["representation"] + [f"{lat} ({'acc' if m['kinds'].get(lat) == 'classification' else 'R²'}, "
                                    f"chance {fmt(float(m['chance'].get(lat, 0)))})" for lat in lats]
    body = [[rep] + [fmt(v) for v in vals] for rep, vals in zip(m["representations"], m["values"])]
    return [TableData(f"{res['name']}: information probes ({res.get('probe_description', '')})", headers, body, [])]


TABLE_BUILDERS = {"probe": _probe_tables, "subsets": _subset_tables, "retrieval": _retrieval_tables,
                  "info_probe": _info_tables, "plots": lambda res: []}


def protocol_tables(res: Mapping[str, Any]) -> list[TableData]:
    return TABLE_BUILDERS[res["protocol"]](res)


# ------------------------------------------------------------------------------------------------ one run
def load_results(path: str | os.PathLike) -> dict[str, Any]:
    """``results.json`` of an evaluation (a run folder, an eval folder, or the file itself)."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    if not p.is_file():
        raise MMIBError(f"'{path}' has no results.json: evaluate the run first (mmib eval RUN_DIR)")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise MMIBError(f"'{p}' is not valid JSON ({e}); it may be from an interrupted write") from e


def render_markdown(results: Mapping[str, Any]) -> str:
    """The Markdown report of one evaluation: what was evaluated, a table per protocol, notes and plots."""
    meth, data = results["method"], results["data"]
    lines = [f"# Evaluation: {meth['name']} on {data['name']}", ""]
    caps = ", ".join(k for k, v in meth.get("capabilities", {}).items() if v) or "none"
    info = [
        ("run", results.get("run_dir") or "—"), ("checkpoint", results.get("checkpoint") or "—"),
        ("modalities", ", ".join(m["name"] for m in data["modalities"])),
        ("task", data["task"] + (f" ({data['n_classes']} classes)" if data.get("n_classes") else "")),
        ("splits", ", ".join(f"{k} {v}" for k, v in (results.get("splits") or {}).items())),
        ("seed", results.get("seed")), ("method capabilities", caps),
        ("git commit", results.get("git_commit") or "—"),
        ("versions", ", ".join(f"{k} {v}" for k, v in (results.get("versions") or {}).items() if v and k in
                               ("mmib", "torch", "lightning", "scikit-learn", "torchmetrics"))),
        ("timings (s)", ", ".join(f"{k} {v:.1f}" for k, v in (results.get("timings") or {}).items()
                                  if isinstance(v, (int, float)))),
    ]
    lines += [md_table(["", ""], [[k, str(v)] for k, v in info]), ""]
    for name, res in results["protocols"].items():
        lines += [f"## {name}", ""]
        for t in protocol_tables(res):
            lines += [f"**{t.title}**", "", md_table(t.headers, t.rows), ""]
            lines += [f"- {n}" for n in t.notes]
            if t.notes:
                lines.append("")
        if res.get("notes"):
            lines += [f"- {n}" for n in res["notes"]] + [""]
        for pname, p in res.get("plots", {}).items():
            lines += [f"![{pname}]({p})", ""]
    return "\n".join(lines)


def make_console():
    """A rich console; 160 columns when the output is not a terminal (logs, pipes) so tables do not wrap."""
    import sys

    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=160)


def print_results(results: Mapping[str, Any], console=None) -> None:
    """The tables of one evaluation on the console (rich)."""
    from rich.markup import escape
    from rich.table import Table

    console = console or make_console()
    meth, data = results["method"], results["data"]
    console.print(f"[bold]Evaluation: {meth['name']} on {data['name']}[/bold] (seed {results.get('seed')})")
    for res in results["protocols"].values():
        for t in protocol_tables(res):
            table = Table(title=t.title, title_justify="left")
            for h in t.headers:
                table.add_column(h, overflow="fold")
            for r in t.rows:
                table.add_row(*r)
            console.print(table)
            for n in t.notes:
                console.print(f"  {escape(n)}")
        for n in res.get("notes", []):
            console.print(f"  [dim]{escape(res['name'])}: {escape(n)}[/dim]")
        for p in res.get("plots", {}).values():
            console.print(f"  plot: {Path(results.get('out_dir', '.')) / p}")


# ------------------------------------------------------------------------------------------------ several runs
COMPARE_METRICS = {"probe": None, "subsets": "primary", "retrieval": ("mAP", "R@1"), "info_probe": ("score",)}


def render_comparison(results: Sequence[Mapping[str, Any]], labels: Sequence[str] | None = None) -> str:
    """Several evaluations side by side: per protocol and metric, one row per row id, one column per run."""
    if not results:
        raise MMIBError("compare: no results given")
    labels = list(labels or [f"{r['method']['name']} ({Path(r.get('out_dir') or r.get('run_dir') or '?').name})"
                             for r in results])
    lines = ["# Comparison", "", md_table(["run", "method", "data", "seed", "commit"],
                                          [[lab, r["method"]["name"], r["data"]["name"], str(r.get("seed")),
                                            str(r.get("git_commit"))] for lab, r in zip(labels, results)]), ""]
    names: list[str] = []
    for r in results:
        names += [n for n in r["protocols"] if n not in names]
    for name in names:
        present = [(lab, r["protocols"][name]) for lab, r in zip(labels, results) if name in r["protocols"]]
        kind = present[0][1]["protocol"]
        if kind not in COMPARE_METRICS:
            continue
        rows0 = [row for _, res in present for row in res["rows"]]
        if not rows0:
            continue
        want = COMPARE_METRICS[kind]
        if want is None:
            metrics = _metric_names(rows0)
        elif want == "primary":
            metrics = [present[0][1].get("primary_metric") or next(iter(rows0[0]["metrics"]))]
        else:
            metrics = [m for m in want if m in rows0[0]["metrics"]]
        ids: list[str] = []
        for row in rows0:
            if row["id"] not in ids:
                ids.append(row["id"])
        for m in metrics:
            lines += [f"## {name}: {m}", ""]
            body = []
            for rid in ids:
                line = [rid]
                for lab, _ in zip(labels, results):
                    res = dict(present).get(lab)
                    row = next((x for x in res["rows"] if x["id"] == rid), None) if res else None
                    line.append(fmt(row["metrics"].get(m), m) if row else "—")
                body.append(line)
            lines += [md_table(["row", *labels], body), ""]
    return "\n".join(lines)
