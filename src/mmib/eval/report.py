"""Reports: every evaluation's ``results.json`` rendered as Markdown tables with its plots, on the console (rich), and
several runs compared side by side (``mmib report RUN_DIR [RUN_DIR...]``). Each protocol's tables and compared
metrics come from its :class:`~mmib.eval.protocols.base.Protocol` record; the table primitives are in
:mod:`mmib.eval.tables`, the paper-vs-ours table in :mod:`mmib.eval.paper` (both re-exported here)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mmib.errors import MMIBError
from mmib.eval.paper import check_paper_block, paper_comparison, paper_table
from mmib.eval.protocols import COMPARE_ALL, COMPARE_PRIMARY, PROTOCOLS
from mmib.eval.tables import TableData, fmt, generic_tables, md_table, metric_names

RESULTS_KIND = "mmib-eval"


def protocol_tables(res: Mapping[str, Any]) -> list[TableData]:
    """The tables of one protocol's result: its protocol's own builder (:attr:`Protocol.tables
    <mmib.eval.protocols.base.Protocol.tables>`, looked up by the result's ``protocol``), or one generic table for a
    protocol that is not registered in this process."""
    unit = PROTOCOLS.unit(res["protocol"])
    return (unit.tables if unit is not None else generic_tables)(res)


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
def render_comparison(results: Sequence[Mapping[str, Any]], labels: Sequence[str] | None = None) -> str:
    """Several evaluations side by side: per protocol and metric (the protocol's :attr:`Protocol.compare
    <mmib.eval.protocols.base.Protocol.compare>`), one row per row id, one column per run."""
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
        unit = PROTOCOLS.unit(kind)
        if unit is None or unit.compare is None:
            continue
        rows0 = [row for _, res in present for row in res["rows"]]
        if not rows0:
            continue
        want = unit.compare
        if want == COMPARE_ALL:
            metrics = metric_names(rows0)
        elif want == COMPARE_PRIMARY:
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


__all__ = ["RESULTS_KIND", "TEMPERATURE_MOVE_FLAG", "TableData", "check_paper_block", "fmt", "learned_temperature_lines",
           "load_results", "make_console", "md_table", "paper_comparison", "paper_table", "print_results",
           "protocol_tables", "render_comparison", "render_markdown", "temperature_note", "temperature_summary"]
