"""The bench report: leaderboard (mean ± std over seeds), aggregated tables per protocol, links to every run."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mmib.eval.report import fmt, learned_temperature_lines, make_console, md_table
from mmib.utils.io import atomic_write_json, atomic_write_text


def fmt_mean_std(mean: float, std: float, n: int, metric: str = "") -> str:
    if math.isnan(mean):
        return "nan"
    if n <= 1 or math.isnan(std):
        return fmt(mean, metric)
    return f"{fmt(mean, metric)} ± {fmt(std, metric)}"


def _lookup(agg: Sequence[Mapping[str, Any]]) -> dict[tuple, Mapping[str, Any]]:
    return {(a["variant"], a["data"], a["protocol"], a["row"], a["metric"]): a for a in agg}


def leaderboard_table(results: Mapping[str, Any]) -> tuple[list[str], list[list[str]]] | None:
    lb = results["leaderboard"]
    if not lb.get("entries"):
        return None
    data = [d["name"] for d in results["suite"]["data"]]
    variants = [v["name"] for v in results["suite"]["methods"]]
    cell = {(e["variant"], e["data"]): e for e in lb["entries"]}
    rows = []
    for v in variants:
        line = [v]
        for d in data:
            e = cell.get((v, d))
            if e is None:
                line.append("—")
                continue
            s = fmt_mean_std(e["mean"], e["std"], e["n"], lb["metric"]) + f" (n={e['n']})"
            line.append(f"**{s}**" if e.get("rank") == 1 and len(variants) > 1 else s)
        rows.append(line)
    # chance is a property of each data set (its classes and class balance): one value per column
    chance = {d: next((e["chance"] for e in lb["entries"] if e["data"] == d and e.get("chance") is not None), None)
              for d in data}
    if any(c is not None for c in chance.values()):
        rows.append(["chance"] + [fmt(float(chance[d]), lb["metric"]) if chance[d] is not None else "—"
                                  for d in data])
    return ["variant", *data], rows


def table_metrics(kind: str, metric_names: Sequence[str], primary: str | None = None) -> list[str]:
    """The metrics of one protocol's tables, in order: every metric for the probe protocol and registered study
    protocols, the paper's retrieval metrics for retrieval, the primary metric (else the first) for the others.
    The kept results file stores these (:func:`mmib.bench.results.pack_results`), so the tables can be rebuilt."""
    from mmib.eval.protocols.registry import BUILTIN_PROTOCOLS

    # the protocols mmib ships; the others are study analyses registered by suites
    if kind == "probe" or kind not in BUILTIN_PROTOCOLS:
        return list(metric_names)
    if kind == "retrieval":
        return [m for m in ("mAP", "R@1", "R@10", "median_rank", "class_top1", "acc_1_of_10") if m in metric_names]
    return [primary or metric_names[0]] if metric_names else []


def own_seeds(suite: Mapping[str, Any]) -> dict[str, list[int]]:
    """The variants that run seeds of their own (the variant's ``seeds``, where they differ from the suite's)."""
    return {v["name"]: list(v["seeds"]) for v in suite.get("methods") or []
            if v.get("seeds") is not None and list(v["seeds"]) != list(suite.get("seeds") or [])}


def seeds_line(suite: Mapping[str, Any]) -> str:
    """``0, 1, 2`` — and, where variants have their own, ``(cox, cox_erm: 0, 1, 2, 3, 4)``."""
    groups: dict[tuple[int, ...], list[str]] = {}
    for v, ss in own_seeds(suite).items():
        groups.setdefault(tuple(ss), []).append(v)
    own = "; ".join(f"{', '.join(vs)}: {', '.join(map(str, ss))}" for ss, vs in groups.items())
    return ", ".join(map(str, suite["seeds"])) + (f" ({own})" if own else "")


def protocol_tables(results: Mapping[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """Per protocol and data set: rows = protocol rows, columns = variants, cells = mean ± std of the protocol's
    primary metric (every metric for the probe protocol). A variant with seeds of its own says how many in its
    column's header (``cox (5 seeds)``): its cells are over those."""
    agg = results["aggregate"]
    look = _lookup(agg)
    variants = [v["name"] for v in results["suite"]["methods"]]
    own = own_seeds(results["suite"])
    heads = [f"{v} ({len(own[v])} seed{'s' if len(own[v]) > 1 else ''})" if v in own else v for v in variants]
    out = []
    for pname, kind in results["protocols"].items():
        for d in [x["name"] for x in results["suite"]["data"]]:
            recs = [a for a in agg if a["protocol"] == pname and a["data"] == d]
            if not recs:
                continue
            rows_ids: list[str] = []
            for a in recs:
                if a["row"] not in rows_ids:
                    rows_ids.append(a["row"])
            metric_names: list[str] = []
            for a in recs:
                if a["metric"] not in metric_names:
                    metric_names.append(a["metric"])
            metrics = table_metrics(kind, metric_names, results.get("primary_metrics", {}).get(pname))
            for m in metrics:
                body = []
                for rid in rows_ids:
                    line = [rid]
                    for v in variants:
                        a = look.get((v, d, pname, rid, m))
                        line.append(fmt_mean_std(a["mean"], a["std"], a["n"], m) if a else "—")
                    chance = next((a.get("chance") for a in recs if a["row"] == rid and a["metric"] == m
                                   and a.get("chance") is not None), None)
                    line.append(fmt(float(chance), m) if chance is not None else "—")
                    body.append(line)
                out.append((f"{pname} · {d} · {m} (mean ± std over seeds)", ["row", *heads, "chance"], body))
    return out


def _fmt_param(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def tuning_section(results: Mapping[str, Any]) -> list[str]:
    """The ``tune:`` block's outcome: the shared budget, each variant's chosen values and every trial's validation
    score (Markdown lines; none without tuning)."""
    tune = results.get("tune") or {}
    spec = (results.get("suite") or {}).get("tune")
    if not tune and not spec:
        return []
    lines = ["## Tuning", ""]
    if spec:
        m = spec["metric"]
        what = (f"logged `{m['logged']}`" if "logged" in m else
                f"oom protocol `{m['oom']}` on the val split" if "oom" in m else
                f"{m['probe']} probe on `{m.get('representation', 'concat')}`, {m.get('metric')} on the val split")
        pr = ", ".join(f"{k}={v}" for k, v in spec["pruner"].items() if k != "name")
        lines += [f"Equal budget for every tuned variant: {spec['n_trials']} trials (pruned and failed ones count), "
                  f"sampler {spec['sampler']['name']} (seed {spec['sampler'].get('seed')}), pruner "
                  f"{spec['pruner']['name']}{f' ({pr})' if pr else ''}; data `{spec['data']}`, seed {spec['seed']}; "
                  f"selection: {what} ({spec['direction']}); the test split is not read. The chosen values then "
                  "run on every seed of the suite.", ""]
        if spec.get("inherit"):
            lines += ["Inherited (not tuned; the parent's chosen values): "
                      + ", ".join(f"{v} ← {p}" for v, p in spec["inherit"].items()) + ".", ""]
    rows = [[v, ", ".join(f"{k}={_fmt_param(x)}" for k, x in r["chosen"].items()), f"{r['best_value']:.4g}",
             str(r["best_trial"]), str(r["n_counted"])] for v, r in tune.items()]
    if rows:
        lines += [md_table(["variant", "chosen values", "best val score", "best trial", "trials"], rows), ""]
    for v, r in tune.items():
        keys = list(r.get("space") or {})
        body = []
        for t in r["trials"]:
            state = t["state"].lower() + (" (interrupted, not counted)" if t.get("interrupted") else "")
            body.append([str(t["number"]), *[_fmt_param(t["params"].get(k, "—")) for k in keys],
                         f"{t['value']:.4g}" if t.get("value") is not None else "—", state])
        lines += [f"**{v}**: every trial's validation score", "", md_table(["trial", *keys, "val score", "state"], body),
                  ""]
    return lines


def render_bench_report(results: Mapping[str, Any], page: bool = False) -> str:
    """The suite's report. ``page=True``: the form spliced into a results page (``mmib report --suite``) — no title,
    no links into run folders (they are not in the repository), headings one level down."""
    s = results["suite"]
    lines = [] if page else [f"# Bench: {s['name']}", ""]
    if s.get("description"):
        lines += [s["description"], ""]
    if s.get("notes"):
        lines += [f"Note: {s['notes']}", ""]
    methods = [[v["name"], v["method"], ", ".join(f"{k}={x}" for k, x in {**v["overrides"], **v["config"]}.items())
                or "defaults"] for v in s["methods"]]
    datas = [[d["name"], d["data"], ", ".join(f"{k}={x}" for k, x in {**d["options"], **d["config"]}.items())
              or "defaults"] for d in s["data"]]
    lines += ["**Method variants**", "", md_table(["variant", "method", "overrides"], methods), "",
              "**Data sets**", "", md_table(["name", "data config", "options"], datas), "",
              f"Seeds: {seeds_line(s)}. Trainer: "
              f"{', '.join(f'{k}={v}' for k, v in s['trainer'].items()) or 'defaults'}. "
              f"Suite file: {s.get('source') or '—'}. Commit: {results.get('git_commit')}.", ""]
    lb = results["leaderboard"]
    t = leaderboard_table(results)
    if t is not None:
        arrow = "higher is better" if lb["higher_is_better"] else "lower is better"
        lines += ["## Leaderboard", "", f"{lb['protocol']} · `{lb['row']}` · **{lb['metric']}** ({arrow}; mean ± "
                  "sample std over seeds; best in bold)", "", md_table(*t), ""]
        if not page and (Path(results["out_dir"]) / "plots" / "leaderboard.png").is_file():
            lines += ["![leaderboard](plots/leaderboard.png)", ""]
    for title, headers, body in protocol_tables(results):
        lines += [f"### {title}", "", md_table(headers, body), ""]
    lines += tuning_section(results)
    lines += ["## Runs", ""]
    rows = []
    for r in results["runs"]:
        t = r.get("timings") or {}
        state = "yes" if r["complete"] else "earlier config" if r.get("earlier_config") else "**no**"
        rows.append([r["variant"], r["data"], str(r["seed"]), state,
                     fmt(t.get("train")) if t.get("train") is not None else "—",
                     fmt(t.get("eval_total")) if t.get("eval_total") is not None else "—",
                     f"[report]({r['folder']}/report.md)" if r["complete"] else "—"])
    if page:
        rows = [r[:-1] for r in rows]
    lines += [md_table(["variant", "data", "seed", "complete", "train s", "eval s", "report"][: 6 if page else 7],
                       rows), ""]
    for f in results.get("failures") or []:
        lines.append(f"- FAILED {f['variant']} · {f['data']} · seed {f['seed']}: {f['error']}")
    lines += learned_temperature_lines(results["runs"])
    done = [r for r in results["runs"] if r["complete"]]
    if page:
        n_done = len(done)
        earlier = sum(bool(r.get("earlier_config")) for r in results["runs"])
        also = (f" ({earlier} more recorded under an earlier configuration of the suite, included in the tables until "
                "rerun)") if earlier else ""
        lines = [f"Suite `{s['name']}`: {n_done} of {len(results['runs'])} runs complete{also}; code "
                 f"{results.get('git_commit')}; tables: `mmib report --suite {s['name']} --into <this page>` from "
                 f"`docs/results/{s['name']}/results.json`.", "", *lines]
        return "\n".join("#" + x if x.startswith("#") else x for x in lines).rstrip() + "\n"
    if 0 < len(done) <= 2:  # small suites (the demo): show the runs' own plots here too
        import json

        for r in done:
            try:
                res = json.loads((Path(results["out_dir"]) / r["folder"] / "results.json").read_text())
            except (OSError, ValueError):
                continue
            for p in res["protocols"].values():
                for pname, rel in p.get("plots", {}).items():
                    lines += [f"![{r['folder']} {pname}]({r['folder']}/{rel})", ""]
    return "\n".join(lines)


def suite_markers(name: str) -> tuple[str, str]:
    return f"<!-- mmib:begin {name} -->", f"<!-- mmib:end {name} -->"


def splice_between(text: str, begin: str, end: str, body: str) -> str:
    """``text`` with what lies between the ``begin`` and ``end`` marker lines replaced by ``body``; without the
    markers, the block is appended. Text outside the markers is kept as it is.

    Raises:
        MMIBError: only one of the markers, or ``end`` before ``begin``.
    """
    from mmib.errors import MMIBError

    has_b, has_e = begin in text, end in text
    block = f"{begin}\n{body.strip()}\n{end}"
    if not has_b and not has_e:
        return (text.rstrip() + "\n\n" if text.strip() else "") + block + "\n"
    if has_b != has_e or text.index(end) < text.index(begin):
        raise MMIBError(f"markers: expected '{begin}' ... '{end}' once each, in this order")
    return text[: text.index(begin)] + block + text[text.index(end) + len(end):]


def write_suite_into(results: Mapping[str, Any], page: str | os.PathLike) -> Path:
    """Render a suite's tables into ``page`` between its markers (``<!-- mmib:begin NAME -->`` …); the rest of the
    page — the analysis written by hand — stays as it is. A missing page is created."""
    p = Path(page)
    name = results["suite"]["name"]
    old = p.read_text() if p.is_file() else ""
    atomic_write_text(p, splice_between(old, *suite_markers(name), render_bench_report(results, page=True)))
    return p


def write_bench_report(results: dict[str, Any], out_dir: str | os.PathLike) -> None:
    from mmib.eval.plots import plot_leaderboard

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lb = results["leaderboard"]
    entries = [e for e in lb.get("entries", []) if not math.isnan(e["mean"])]
    if entries:
        labels = [f"{e['variant']} · {e['data']}" for e in entries]
        plot_leaderboard(labels, [e["mean"] for e in entries], [e["std"] for e in entries],
                         out / "plots" / "leaderboard.png", lb["metric"],
                         f"{results['suite']['name']}: {lb['protocol']} {lb['row']}")
    atomic_write_text(out / "report.md", render_bench_report(results))
    atomic_write_json(out / "results.json", results)


def print_leaderboard(results: Mapping[str, Any], console=None) -> None:
    from rich.table import Table

    console = console or make_console()
    t = leaderboard_table(results)
    lb = results["leaderboard"]
    if t is None:
        console.print("no finished runs to rank", highlight=False)
        return
    table = Table(title=f"{results['suite']['name']} leaderboard — {lb['protocol']} {lb['row']} {lb['metric']} "
                        f"({'higher' if lb['higher_is_better'] else 'lower'} is better; mean ± std over seeds)",
                  title_justify="left")
    for h in t[0]:
        table.add_column(h)
    for r in t[1]:
        table.add_row(*[c.replace("**", "") for c in r])
    console.print(table)
    for f in results.get("failures") or []:
        console.print(f"FAILED {f['variant']} · {f['data']} · seed {f['seed']}: {f['error']}", markup=False,
                      highlight=False)
