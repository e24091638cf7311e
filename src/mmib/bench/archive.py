"""The records of a bench suite's runs: those kept in its results file or imported from another folder, the archive
of finished runs outside the checkout (:func:`sync_archive`), slim records, and :func:`collect_suite` (every complete
run read and aggregated, no training)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmib.bench.aggregate import aggregate, default_leaderboard_spec, leaderboard
from mmib.bench.plan import BENCH_KIND, PlannedRun, complete_for, read_json_record
from mmib.bench.suite import Suite


def default_archive(suite_name: str) -> Path:
    """Where ``mmib bench`` keeps full run records by default: ``$MMIB_ARCHIVE/<suite>``, else
    ``~/.cache/mmib/archive/<suite>`` — outside the checkout."""
    root = os.environ.get("MMIB_ARCHIVE")
    return (Path(root) if root else Path.home() / ".cache" / "mmib" / "archive") / suite_name


def import_records(suite: Suite, folder: str | Path) -> dict[str, dict[str, Any]]:
    """The complete run records of ``suite`` in an archive folder (slimmed), by run folder name."""
    names = {f"{v.name}-{d.name}-s{s}" for d in suite.data for v in suite.methods if v.runs_on(d.name)
             for s in suite.seeds_of(v)}
    out = {}
    for p in sorted(Path(folder).glob("*.json")):
        res = read_json_record(p)
        b = (res or {}).get("bench") or {}
        if res and res.get("complete") and b.get("suite") == suite.name and p.stem in names:
            out[p.stem] = slim_record(res)
    return out


def previous_results(suite: Suite, out: Path, results: str | Path | None) -> dict[str, Any]:
    """The kept records and tuning of the suite: those of ``results`` over those of ``<out>/results.json``."""
    merged: dict[str, Any] = {"records": {}, "tune": {}}
    from mmib.bench.results import read_results

    for p in (out / "results.json", Path(results) if results is not None else None):
        r = read_results(p) if p is not None else None
        if not r or r.get("kind") != BENCH_KIND or (r.get("suite") or {}).get("name") != suite.name:
            continue
        merged["records"].update(r.get("records") or {})
        merged["tune"].update(r.get("tune") or {})
    return merged


def sync_archive(plan: Sequence[PlannedRun], archive: str | Path, restore: bool = True) -> tuple[int, int]:
    """Two-way sync of finished runs between their folders and an archive folder of ``<run folder>.json`` files.

    A run whose folder lacks a complete ``results.json`` of its fingerprint but whose archived copy is one gets it
    restored (its status becomes ``done``); a complete run whose archived copy is missing or differs (another
    configuration, or the run was redone with ``--force``) is archived. Archived files of other configurations are
    never restored. With ``restore=False`` nothing is written: the count of restorable runs is returned (for
    ``--dry-run``).

    Returns:
        ``(restored, archived)`` counts.
    """
    arch = Path(archive)
    restored = archived = 0
    for r in plan:
        kept = arch / f"{r.folder.name}.json"
        here = read_json_record(r.folder / "results.json")
        if complete_for(here, r.fingerprint):
            if restore and read_json_record(kept) != here:  # new, from another configuration, or redone (--force)
                arch.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(r.folder / "results.json", kept)
                archived += 1
            continue
        if complete_for(read_json_record(kept), r.fingerprint):
            restored += 1
            if restore:
                r.folder.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(kept, r.folder / "results.json")
                r.status = "done"
    return restored, archived


def slim_record(res: dict[str, Any]) -> dict[str, Any]:
    """What the suite's results file keeps of one finished run: its identity and fingerprint (``bench``) and every
    protocol row's final numeric metrics — enough to count the run as done elsewhere and to aggregate and report it.
    The full record (notes, options, per-row tables, config) stays in the run folder and the archive."""

    def numbers(d: Any) -> dict[str, float]:
        return {k: v for k, v in (d or {}).items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

    protos = {}
    for pname, p in res["protocols"].items():
        protos[pname] = {"protocol": p["protocol"], "rows": [
            {"id": row["id"], "label": row.get("label", ""), "source": row.get("source", ""),
             "metrics": numbers(row.get("metrics")), **({"chance": numbers(row["chance"])} if row.get("chance") else {})}
            for row in p.get("rows", [])]}
        if p.get("primary_metric"):
            protos[pname]["primary_metric"] = p["primary_metric"]
    t = res.get("timings") or {}
    out = {"complete": bool(res.get("complete")), "bench": res["bench"], "protocols": protos,
           "timings": {k: t[k] for k in ("train", "eval_total") if k in t},
           "git_commit": res.get("git_commit"), "finished": res.get("finished")}
    if res.get("learned_temperature"):
        out["learned_temperature"] = res["learned_temperature"]
    return out


def collect_suite(suite: Suite, out: Path, plan: list[PlannedRun], failures: list[dict[str, Any]] | None = None,
                  seconds: float | None = None, tune: dict[str, dict] | None = None) -> dict[str, Any]:
    """Read every complete run of the plan (its folder, else its kept record) and aggregate them (no training)."""
    from mmib.runs import git_commit, package_versions

    run_results, runs, records = [], [], {}
    for r in plan:
        res = read_json_record(r.folder / "results.json")
        current = True
        if not complete_for(res, r.fingerprint):
            res = r.record if (r.record or {}).get("complete") else None
            # a kept record of an earlier configuration (another fingerprint): reported, flagged, until redone
            current = res is not None and complete_for(res, r.fingerprint)
        ok = res is not None
        runs.append({"variant": r.variant.name, "method": r.variant.method, "data": r.data.name, "seed": r.seed,
                     "folder": r.folder.name, "complete": ok and current, "earlier_config": ok and not current,
                     "fingerprint": r.fingerprint or None,
                     "timings": (res or {}).get("timings") if ok else None,
                     "learned_temperature": (res or {}).get("learned_temperature") if ok else None})
        if ok:
            run_results.append(res)
            records[r.folder.name] = slim_record(res)
    agg = aggregate(run_results)
    spec = dict(suite.leaderboard) or default_leaderboard_spec(run_results)
    lb = leaderboard(agg, spec, [v.name for v in suite.methods], [d.name for d in suite.data])
    protocol_kinds: dict[str, str] = {}
    primary: dict[str, str] = {}
    for res in run_results:
        for pname, p in res["protocols"].items():
            protocol_kinds.setdefault(pname, p["protocol"])
            if p.get("primary_metric"):
                primary.setdefault(pname, p["primary_metric"])
    return {
        "kind": BENCH_KIND, "schema_version": 2, "suite": suite.to_dict(), "out_dir": str(out),
        "complete": all(r["complete"] for r in runs), "runs": runs, "failures": failures or [],
        "protocols": protocol_kinds, "primary_metrics": primary, "aggregate": agg, "leaderboard": lb,
        "tune": tune or {}, "records": records,
        "timings": {"suite_seconds": round(seconds, 3) if seconds is not None else None},
        "versions": package_versions(), "git_commit": git_commit(), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
