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


def _oom_tables(res: Mapping[str, Any]) -> list[TableData]:
    rows = res["rows"]
    if not rows:
        return []
    cols = list(rows[0]["metrics"])
    body = [[r["label"], *[fmt(r["metrics"][c], c) for c in cols]] for r in rows]
    body += [["chance", *[fmt(r["chance"][c], c) if c in r["chance"] else "—" for c in cols]] for r in rows[:1]]
    return [TableData(f"{res['name']}: out-of-modal generalization", ["method", *cols], body, list(res["notes"]))]


def _pair_probe_tables(res: Mapping[str, Any]) -> list[TableData]:
    """``pair_probe`` rows have the probe protocol's shape; the notes say how the pairs were drawn."""
    tables = _probe_tables(res)
    for t in tables:
        t.title = t.title.replace("probes on frozen representations",
                                  "same-group pair classification (pairs of frozen representations)")
        t.notes = list(res.get("notes", []))
    return tables


TABLE_BUILDERS = {"probe": _probe_tables, "pair_probe": _pair_probe_tables, "oom": _oom_tables,
                  "subsets": _subset_tables, "retrieval": _retrieval_tables, "info_probe": _info_tables,
                  "plots": lambda res: []}


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


def protocol_tables(res: Mapping[str, Any]) -> list[TableData]:
    return TABLE_BUILDERS.get(res["protocol"], generic_tables)(res)


# ------------------------------------------------------------------------------------------------ paper vs ours
PAPER_KEYS = ("source", "metric", "reported", "notes", "scale", "protocol", "row")


def _paper_error(key: str, expected: str, got: Any) -> MMIBError:
    return MMIBError(f"paper.{key}: expected {expected}, got {got!r} (the `paper` block of the run's config, "
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
    if protocol not in TABLE_BUILDERS:
        raise _paper_error("protocol", f"one of {', '.join(TABLE_BUILDERS)}", protocol)
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


#: a learned temperature that moved by less than this fraction of its initial value is flagged in the reports
TEMPERATURE_MOVE_FLAG = 0.2


def temperature_summary(final_metrics: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The objective's learned temperature from a run's ``final_metrics`` (``initial_temperature``,
    ``final_temperature``, logged by methods with a learned temperature): initial, final, relative change and
    ``flagged`` (moved by less than :data:`TEMPERATURE_MOVE_FLAG`); None for a run without one."""
    fm = final_metrics or {}
    if "final_temperature" not in fm or "initial_temperature" not in fm:
        return None
    t0, t1 = float(fm["initial_temperature"]), float(fm["final_temperature"])
    change = (t1 - t0) / t0 if t0 else float("nan")
    return {"initial": t0, "final": t1, "relative_change": change, "flagged": bool(abs(change) < TEMPERATURE_MOVE_FLAG)}


def temperature_note(t: Mapping[str, Any]) -> str:
    """``0.07 → 0.0634 (−9.4 %)``, with a warning when the learned temperature barely moved."""
    text = f"{fmt(t['initial'])} → {fmt(t['final'])} ({100 * t['relative_change']:+.1f} %)"
    if t.get("flagged"):
        text += (f" — **moved < {100 * TEMPERATURE_MOVE_FLAG:.0f} %**: learned but in effect fixed at its initial "
                 "value (raise method.optim.temperature_lr or tune the temperature)")
    return text


def learned_temperature_lines(runs: Sequence[Mapping[str, Any]]) -> list[str]:
    """A bench report's note on its runs' learned temperatures: how many there are and which barely moved."""
    have = [r for r in runs if r.get("learned_temperature")]
    if not have:
        return []
    flagged = [r for r in have if r["learned_temperature"].get("flagged")]
    lines = [f"**Learned temperatures**: {len(have)} runs learn their temperature; {len(flagged)} moved by less than "
             f"{100 * TEMPERATURE_MOVE_FLAG:.0f} % of the initial value (in effect fixed: their comparison is at that "
             "value).", ""]
    lines += [f"- {r['variant']} · {r['data']} · seed {r['seed']}: {temperature_note(r['learned_temperature'])}"
              for r in flagged]
    return lines + ([""] if flagged else [])


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
    if results.get("learned_temperature"):
        info.append(("learned temperature", temperature_note(results["learned_temperature"])))
    lines += [md_table(["", ""], [[k, str(v)] for k, v in info]), ""]
    pt = paper_table(results)
    if pt is not None:
        lines += ["## Paper vs ours", "", f"**{pt.title}**", "", md_table(pt.headers, pt.rows), ""]
        lines += [f"- {n}" for n in pt.notes] + [""]
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
    pt = paper_table(results)
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
    if pt is not None:  # last: the comparison the recipe was run for
        table = Table(title=pt.title, title_justify="left")
        for h in pt.headers:
            table.add_column(h, overflow="fold")
        for r in pt.rows:
            table.add_row(*r)
        console.print(table)
        for n in pt.notes:
            console.print(f"  {escape(n)}")


# ------------------------------------------------------------------------------------------------ several runs
COMPARE_METRICS = {"probe": None, "pair_probe": None, "subsets": "primary", "retrieval": ("mAP", "R@1"), "info_probe": ("score",)}


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
