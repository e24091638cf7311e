"""Run a bench suite: train and evaluate every (method variant, data set, seed) that is not already done.

``runs/bench/<suite>/<variant>-<data>-s<seed>/`` holds one engine run (config, checkpoints, logs) and its evaluation
(``results.json``, ``report.md``, ``plots/``). A folder is **done** when its ``results.json`` is complete and was
produced from the same configuration and protocols (a fingerprint): it is skipped. A run whose training finished but
whose evaluation did not is evaluated from its checkpoint; one whose training was interrupted resumes from
``last.ckpt``; a folder from another configuration is redone. The suite folder gets ``results.json`` (the
aggregate), ``report.md`` and ``plots/leaderboard.png``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmib.bench.aggregate import aggregate, default_leaderboard_spec, leaderboard
from mmib.bench.suite import DataEntry, MethodVariant, Suite, load_suite
from mmib.errors import MMIBError

BENCH_KIND = "mmib-bench"
MARKER = "bench.json"
#: config keys that do not change what a run computes (left out of the fingerprint)
_NOT_FINGERPRINTED = ("run_dir", "name", "resume")


@dataclass
class PlannedRun:
    variant: MethodVariant
    data: DataEntry
    seed: int
    folder: Path
    overrides: list[str]
    fingerprint: str
    status: str  # done | evaluate | resume | stale | new

    @property
    def label(self) -> str:
        return f"{self.variant.name} · {self.data.name} · seed {self.seed}"


def default_out_dir(suite: Suite) -> Path:
    return Path("runs") / "bench" / suite.name


def run_overrides(suite: Suite, variant: MethodVariant, data: DataEntry, seed: int, out_dir: Path,
                  progress: bool = True) -> list[str]:
    """Hydra overrides of one run (suite overrides < trainer < data entry < method variant)."""
    from mmib.config import dotted_overrides

    opts: dict[str, Any] = {}
    opts.update(suite.overrides)
    opts.update({f"trainer.{k}": v for k, v in suite.trainer.items()})
    opts.update({f"data.{k}": v for k, v in data.options.items()})
    opts.update(data.config)
    opts.update({f"method.{k}": v for k, v in variant.overrides.items()})
    opts.update(variant.config)
    if not progress:
        opts["trainer.enable_progress_bar"] = False
    opts.update({"seed": seed, "run_dir": str(out_dir), "name": f"{variant.name}-{data.name}-s{seed}"})
    fixed = [o for o in opts if o.lstrip("+") in ("method", "data")]
    if fixed:
        raise MMIBError(f"suite '{suite.name}': choose the method and data with 'method:'/'data:', not {fixed}")
    return [f"method={variant.method}", f"data={data.data}", *dotted_overrides(opts)]


def _drop_cache_keys(d: Any) -> Any:
    """The config without its ``cache`` / ``cache_dir`` switches (at any depth): where intermediate results are kept
    does not change a run's results, so it does not make a finished run stale. Likewise ``gather_distributed:
    false``: not gathering is what every objective did before the switch existed (a run finished then has the same
    results), so the default does not enter the fingerprint; ``true`` does."""
    if isinstance(d, dict):
        out = {}
        for k, v in d.items():
            if k in ("cache", "cache_dir") or (k == "gather_distributed" and v is False):
                continue
            kept = _drop_cache_keys(v)
            if isinstance(v, dict) and v and not kept:  # a block that held only such switches: as if absent
                continue
            out[k] = kept
        return out
    if isinstance(d, list):
        return [_drop_cache_keys(v) for v in d]
    return d


def config_fingerprint(cfg: dict[str, Any], protocols: Any) -> str:
    c = {k: v for k, v in cfg.items() if k not in _NOT_FINGERPRINTED}
    c["trainer"] = {k: v for k, v in (c.get("trainer") or {}).items() if k != "enable_progress_bar"}
    c = _drop_cache_keys(c)
    text = json.dumps({"config": c, "protocols": protocols}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _read_json(p: Path) -> dict[str, Any] | None:
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def run_status(folder: Path, fingerprint: str) -> str:
    """done | evaluate | resume | stale | new (see the module docstring)."""
    if not folder.exists():
        return "new"
    res = _read_json(folder / "results.json")
    if res and res.get("complete") and (res.get("bench") or {}).get("fingerprint") == fingerprint:
        return "done"
    marker = _read_json(folder / MARKER)
    if not marker or marker.get("fingerprint") != fingerprint:
        return "stale"
    if not (folder / "checkpoints" / "last.ckpt").is_file():
        return "new"
    run = _read_json(folder / "run.json") or {}
    return "evaluate" if run.get("finished") else "resume"


def plan_suite(suite: Suite, out_dir: str | os.PathLike | None = None, progress: bool = True) -> list[PlannedRun]:
    """Every (variant, data, seed) of the suite with its folder, overrides, fingerprint and status."""
    from mmib.config import compose_config, to_container

    suite = load_suite(suite)
    out = Path(out_dir) if out_dir is not None else default_out_dir(suite)
    planned = []
    for data in suite.data:
        for variant in suite.methods:
            if not variant.runs_on(data.name):
                continue
            for seed in suite.seeds:
                ov = run_overrides(suite, variant, data, seed, out, progress)
                cfg = to_container(compose_config(ov))
                fp = config_fingerprint(cfg, suite.protocols)
                folder = out / f"{variant.name}-{data.name}-s{seed}"
                planned.append(PlannedRun(variant, data, seed, folder, ov, fp, run_status(folder, fp)))
    return planned


def select_runs(suite: Suite, plan: list[PlannedRun], methods: Sequence[str] | None = None,
                data: Sequence[str] | None = None, seeds: Sequence[int] | None = None) -> list[PlannedRun]:
    """The planned runs restricted to some method variants, data entries and seeds (None: all).

    Raises:
        MMIBError: a name or seed that is not in the suite (the message lists the valid ones).
    """
    def check(given, valid, what):
        if given is None:
            return None
        given = list(given)
        bad = [g for g in given if g not in valid]
        if bad:
            raise MMIBError(f"bench {suite.name}: unknown {what} {bad}; the suite has {list(valid)}")
        return set(given)

    m = check(methods, [v.name for v in suite.methods], "method variant(s)")
    d = check(data, [e.name for e in suite.data], "data entry(ies)")
    s = check([int(x) for x in seeds] if seeds is not None else None, suite.seeds, "seed(s)")
    return [r for r in plan if (m is None or r.variant.name in m) and (d is None or r.data.name in d)
            and (s is None or r.seed in s)]


def _execute(run: PlannedRun, suite: Suite, progress: bool) -> dict[str, Any]:
    from mmib.config import compose_config, to_container
    from mmib.engine import is_rank_zero, load_run, train
    from mmib.eval.evaluate import evaluate
    from mmib.utils.io import atomic_write_json

    status = run.status
    rank_zero = is_rank_zero()  # under several processes rank 0 alone deletes and writes files
    if status == "stale" and rank_zero:
        shutil.rmtree(run.folder)  # a run of another configuration: it does not belong to this suite any more
        status = "new"
    ov = list(run.overrides)
    if status == "resume":
        ov.append("resume=last")
    cfg = compose_config(ov)
    c = to_container(cfg)
    run.folder.mkdir(parents=True, exist_ok=True)
    if rank_zero:
        atomic_write_json(run.folder / MARKER, {"suite": suite.name, "variant": run.variant.name, "data": run.data.name,
                                                "seed": run.seed, "fingerprint": run.fingerprint,
                                                "overrides": ov})
    if status == "evaluate":
        _, method, dm = load_run(run.folder)
    else:
        res = train(cfg)
        method, dm = res.method, res.datamodule
        if res.run_dir.resolve() != run.folder.resolve():
            raise MMIBError(f"bench: the engine wrote '{res.run_dir}', expected '{run.folder}'")
    bench = {"suite": suite.name, "variant": run.variant.name, "method": run.variant.method, "data": run.data.name,
             "data_config": run.data.data, "seed": run.seed, "fingerprint": run.fingerprint,
             "folder": run.folder.name}
    return evaluate(method, dm, suite.protocols, out_dir=run.folder, run_dir=run.folder, config=c, seed=run.seed,
                    progress=progress, checkpoint=str(run.folder / "checkpoints" / "last.ckpt"),
                    extra={"bench": bench})


def run_suite(
    suite: str | os.PathLike | Suite | dict,
    out_dir: str | os.PathLike | None = None,
    force: bool = False,
    progress: bool = True,
    fail_fast: bool = False,
    console=None,
    print_summary: bool = True,
    methods: Sequence[str] | None = None,
    data: Sequence[str] | None = None,
    seeds: Sequence[int] | None = None,
    report_only: bool = False,
    archive: str | Path | None = None,
) -> dict[str, Any]:
    """Run what is not done yet, then aggregate every finished run of the suite and write its report.

    Args:
        suite: a packaged suite name, a YAML path, a mapping, or a :class:`Suite`.
        out_dir: the suite folder (default ``runs/bench/<suite>``).
        force: redo every run, even those that are done.
        progress: show progress (rich; Lightning's bar while training).
        fail_fast: stop at the first failing run (default: record the failure and go on).
        console: a rich console for the messages; print_summary: print the leaderboard at the end.
        methods, data, seeds: run only these method variants / data entries / seeds (names as in the suite; default
            all). The report still covers the whole suite: every run already done counts, the others show as missing.
        report_only: train and evaluate nothing; aggregate the finished runs and write the report.
        archive: a folder that keeps each finished run's ``results.json`` (as ``<run folder>.json``, ~16 kB) apart
            from its checkpoints, e.g. under version control: runs archived there count as done (they are restored
            into their folders when these lack them and the fingerprint matches), and every run finished now is
            archived — so a suite too long for one machine or session is finished piecewise (:func:`sync_archive`).

    Returns:
        the suite's aggregate results (also written to ``<out_dir>/results.json``).
    """
    from mmib.bench.report import print_leaderboard, write_bench_report
    from mmib.engine import is_rank_zero
    from mmib.eval.report import make_console

    # Under DDP Lightning re-runs the whole command on every rank: all ranks train (together), rank 0 alone
    # evaluates (the others wait for it, see mmib.eval.evaluate), archives, writes the suite's files and prints.
    rank_zero = is_rank_zero()
    if not rank_zero:
        from rich.console import Console

        console = Console(quiet=True)
    console = console or make_console()
    suite = load_suite(suite)
    out = Path(out_dir) if out_dir is not None else default_out_dir(suite)
    t0 = time.time()
    plan = plan_suite(suite, out, progress)
    arch = Path(archive) if archive is not None else None
    if arch is not None and not force:
        restored, _ = sync_archive(plan, arch)
        if restored:
            console.print(f"restored {restored} finished runs from the archive {arch}", highlight=False)
    selected = select_runs(suite, plan, methods, data, seeds)
    if force:
        for r in selected:
            if r.folder.exists():
                r.status = "stale"
    todo = [] if report_only else [r for r in selected if r.status != "done"]
    scope = "" if len(selected) == len(plan) else f"; selected {len(selected)}"
    console.print(f"[bold]bench {suite.name}[/bold]: {len(plan)} runs ({sum(r.status == 'done' for r in plan)} done"
                  f"{scope}, {len(todo)} to run) → {out}", highlight=False)
    failures: list[dict[str, Any]] = []
    for i, r in enumerate(todo, start=1):
        what = {"new": "train + evaluate", "stale": "redo (configuration changed)", "resume": "resume training",
                "evaluate": "evaluate (training finished)"}[r.status]
        console.print(f"[{i}/{len(todo)}] {r.label}: {what}", highlight=False, markup=False)
        t1 = time.time()
        try:
            _execute(r, suite, progress)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # one failing run does not lose the others' results
            if fail_fast:
                raise
            failures.append({"variant": r.variant.name, "data": r.data.name, "seed": r.seed,
                             "error": f"{type(e).__name__}: {e}"})
            console.print(f"  failed: {type(e).__name__}: {e}", highlight=False, markup=False)
            continue
        console.print(f"  done in {time.time() - t1:.1f} s", highlight=False)
        if arch is not None and rank_zero:
            sync_archive([r], arch)
    if arch is not None and rank_zero:
        sync_archive(plan, arch)
    results = collect_suite(suite, out, plan, failures, seconds=time.time() - t0)
    if not rank_zero:
        from mmib.utils.dist import launch_rank

        return {**results, "skipped_on_rank": launch_rank()}
    write_bench_report(results, out)
    if print_summary:
        print_leaderboard(results, console)
        console.print(f"report: {out / 'report.md'}  results: {out / 'results.json'}", highlight=False)
    return results


def _complete_for(res: dict[str, Any] | None, fingerprint: str) -> bool:
    return bool(res and res.get("complete") and (res.get("bench") or {}).get("fingerprint") == fingerprint)


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
        here = _read_json(r.folder / "results.json")
        if _complete_for(here, r.fingerprint):
            if restore and _read_json(kept) != here:  # new, from another configuration, or redone (--force)
                arch.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(r.folder / "results.json", kept)
                archived += 1
            continue
        if _complete_for(_read_json(kept), r.fingerprint):
            restored += 1
            if restore:
                r.folder.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(kept, r.folder / "results.json")
                r.status = "done"
    return restored, archived


def collect_suite(suite: Suite, out: Path, plan: list[PlannedRun], failures: list[dict[str, Any]] | None = None,
                  seconds: float | None = None) -> dict[str, Any]:
    """Read every complete run of the plan and aggregate them (no training, no evaluation)."""
    from mmib.engine import git_commit, package_versions

    run_results, runs = [], []
    for r in plan:
        res = _read_json(r.folder / "results.json")
        ok = bool(res and res.get("complete") and (res.get("bench") or {}).get("fingerprint") == r.fingerprint)
        runs.append({"variant": r.variant.name, "method": r.variant.method, "data": r.data.name, "seed": r.seed,
                     "folder": r.folder.name, "complete": ok,
                     "timings": (res or {}).get("timings") if ok else None})
        if ok:
            run_results.append(res)
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
        "kind": BENCH_KIND, "schema_version": 1, "suite": suite.to_dict(), "out_dir": str(out),
        "complete": all(r["complete"] for r in runs), "runs": runs, "failures": failures or [],
        "protocols": protocol_kinds, "primary_metrics": primary, "aggregate": agg, "leaderboard": lb,
        "timings": {"suite_seconds": round(seconds, 3) if seconds is not None else None},
        "versions": package_versions(), "git_commit": git_commit(), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
