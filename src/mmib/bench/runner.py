"""Run a bench suite: train and evaluate every (method variant, data set, seed) that is not already done.

``runs/bench/<suite>/<variant>-<data>-s<seed>/`` holds one engine run (config, checkpoints, logs) and its evaluation
(``results.json``, ``report.md``, ``plots/``). A folder is **done** when its ``results.json`` is complete and was
produced from the same configuration and protocols (a fingerprint): it is skipped. A run whose training finished but
whose evaluation did not is evaluated from its checkpoint; one whose training was interrupted resumes from
``last.ckpt``; a folder from another configuration is redone. The suite folder gets ``results.json`` (the
aggregate), ``report.md`` and ``plots/leaderboard.png``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmib.bench.aggregate import aggregate, default_leaderboard_spec, leaderboard
from mmib.bench.overrides import config_fingerprint, run_overrides
from mmib.bench.suite import DataEntry, MethodVariant, Suite, load_suite
from mmib.errors import MMIBError

BENCH_KIND = "mmib-bench"
MARKER = "bench.json"


@dataclass
class PlannedRun:
    variant: MethodVariant
    data: DataEntry
    seed: int
    folder: Path
    overrides: list[str]
    fingerprint: str
    status: str  # done | evaluate | resume | stale | new | tune (waits for its variant's tuning)
    #: the run's record kept in the suite's results file (slim_record) when it was finished elsewhere
    record: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return f"{self.variant.name} · {self.data.name} · seed {self.seed}"


def default_out_dir(suite: Suite) -> Path:
    return Path("runs") / "bench" / suite.name


def evaluation_spec(suite: Suite, variant: MethodVariant, data: DataEntry) -> Any:
    """What besides the config decides a run's results: the protocols, and — only where given, so that the
    fingerprints of suites without them stay as they were — callbacks and evaluation data."""
    extra = {k: v for k, v in (("callbacks", [*suite.callbacks, *variant.callbacks]), ("eval_data", data.eval_data))
             if v}
    return {"protocols": suite.protocols, **extra} if extra else suite.protocols


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


def plan_suite(suite: Suite, out_dir: str | os.PathLike | None = None, progress: bool = True,
               previous: dict[str, Any] | None = None, tuned: dict[str, dict] | None = None) -> list[PlannedRun]:
    """Every (variant, data, seed) of the suite with its folder, overrides, fingerprint and status.

    Args:
        previous: a suite results file (``results.json`` as written by :func:`run_suite`): the runs it records with
            the planned fingerprint count as done (``record``), and its finished tuning is reused.
        tuned: variant → tuning record (:func:`mmib.bench.tune.tune_suite`); default: the finished studies found in
            ``<out>/tune/`` or ``previous``. A tuned variant without one has status ``tune``.
    """
    from mmib.config import compose_config, to_container

    suite = load_suite(suite)
    out = Path(out_dir) if out_dir is not None else default_out_dir(suite)
    kept = (previous or {}).get("records") or {}
    pending: set[str] = set()
    if suite.tune is not None:
        from mmib.bench.tune import apply_tuning, known_tuning

        if tuned is None:
            tuned = known_tuning(suite, suite.tune, out / "tune", (previous or {}).get("tune"))
        pending = suite.tune.pending(tuned)
        suite = apply_tuning(suite, {v: r["chosen"] for v, r in tuned.items()})
    planned = []
    for data in suite.data:
        for variant in suite.methods:
            if not variant.runs_on(data.name):
                continue
            for seed in suite.seeds:
                folder = out / f"{variant.name}-{data.name}-s{seed}"
                if variant.name in pending:
                    planned.append(PlannedRun(variant, data, seed, folder, [], "", "tune"))
                    continue
                ov = run_overrides(suite, variant, data, seed, out, progress)
                cfg = to_container(compose_config(ov))
                fp = config_fingerprint(cfg, evaluation_spec(suite, variant, data))
                status = run_status(folder, fp)
                record = kept.get(folder.name)
                if status != "done" and _complete_for(record, fp):
                    status = "done"
                elif status == "done" or not (record or {}).get("complete"):
                    record = None
                # else: a record of an earlier configuration, reported as such until the run is redone
                planned.append(PlannedRun(variant, data, seed, folder, ov, fp, status, record))
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


def _marker_callback_class():
    import lightning as L

    from mmib.utils.io import atomic_write_json

    class MarkerCallback(L.Callback):
        """Writes the bench marker (fingerprint, overrides) into the run folder when fitting starts."""

        def __init__(self, path: Path, marker: dict[str, Any]):
            self.path, self.marker = path, marker

        def on_fit_start(self, trainer, pl_module):
            if trainer.is_global_zero:
                atomic_write_json(self.path, self.marker)

    return MarkerCallback


def _MarkerCallback(path: Path, marker: dict[str, Any]):  # noqa: N802 - a class built on first use (Lightning import)
    return _marker_callback_class()(path, marker)


def _run_callbacks(run: PlannedRun, suite: Suite) -> list:
    from mmib.bench.extensions import build_callbacks

    return build_callbacks([*suite.callbacks, *run.variant.callbacks])


def eval_datamodule(run: PlannedRun, overrides: list[str]):
    """The data module the protocols evaluate on: the run's own, or — with the data entry's ``eval_data`` — the same
    data config with other options, split with the run's seed."""
    from mmib.config import compose_config, dotted_overrides, to_container
    from mmib.runs import build_datamodule

    e = run.data.eval_data
    opts = {**{f"data.{k}": v for k, v in e["options"].items()}, **e["config"]}
    return build_datamodule(to_container(compose_config([*overrides, *dotted_overrides(opts)])))


def _is_run_folder(folder: Path) -> bool:
    """The engine's rule: a folder is a run if it holds config.yaml or checkpoints/."""
    return (folder / "config.yaml").exists() or (folder / "checkpoints").exists()


def _execute(run: PlannedRun, suite: Suite, progress: bool) -> dict[str, Any]:
    from mmib.config import compose_config, to_container
    from mmib.engine import train
    from mmib.eval.evaluate import evaluate
    from mmib.runs import load_run

    status = run.status
    ov = list(run.overrides)
    if status == "resume":
        ov.append("resume=last")
    elif status in ("stale", "new") and _is_run_folder(run.folder):
        # a run of another configuration (stale), or one that stopped before its first checkpoint: the engine moves
        # it aside (renamed, not deleted) when told so explicitly (the run-folder rule of mmib.engine)
        ov.append("overwrite=true")
    cfg = compose_config(ov)
    c = to_container(cfg)
    marker = {"suite": suite.name, "variant": run.variant.name, "data": run.data.name, "seed": run.seed,
              "fingerprint": run.fingerprint, "overrides": ov}
    if status == "evaluate":
        # the suite's own data config (which the user chose), not the folder's, decides whether pickles are trusted
        _, method, dm = load_run(run.folder, trust_pickle=bool((c.get("data") or {}).get("trust_pickle")))
    else:
        # the marker is written once the engine holds the folder (after it moved an old run aside)
        res = train(cfg, callbacks=[_MarkerCallback(run.folder / MARKER, marker), *_run_callbacks(run, suite)])
        method, dm = res.method, res.datamodule
        if res.run_dir.resolve() != run.folder.resolve():
            raise MMIBError(f"bench: the engine wrote '{res.run_dir}', expected '{run.folder}'")
    if run.data.eval_data:
        dm = eval_datamodule(run, run.overrides)
    bench = {"suite": suite.name, "variant": run.variant.name, "method": run.variant.method, "data": run.data.name,
             "data_config": run.data.data, "seed": run.seed, "fingerprint": run.fingerprint,
             "folder": run.folder.name}
    return evaluate(method, dm, suite.protocols, out_dir=run.folder, run_dir=run.folder, config=c, seed=run.seed,
                    progress=progress, checkpoint=str(run.folder / "checkpoints" / "last.ckpt"),
                    extra={"bench": bench})


def default_archive(suite_name: str) -> Path:
    """Where ``mmib bench`` keeps full run records by default: ``$MMIB_ARCHIVE/<suite>``, else
    ``~/.cache/mmib/archive/<suite>`` — outside the checkout."""
    root = os.environ.get("MMIB_ARCHIVE")
    return (Path(root) if root else Path.home() / ".cache" / "mmib" / "archive") / suite_name


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
    results: str | Path | None = None,
    import_archive: str | Path | None = None,
) -> dict[str, Any]:
    """Tune the suite's tuned variants (if it has a ``tune:`` block), run what is not done yet, then aggregate every
    finished run of the suite and write its report.

    Args:
        suite: a packaged suite name, a YAML path, a mapping, or a :class:`Suite`.
        out_dir: the suite folder (default ``runs/bench/<suite>``).
        force: redo every run, even those that are done.
        progress: show progress (rich; Lightning's bar while training).
        fail_fast: stop at the first failing run (default: record the failure and go on).
        console: a rich console for the messages; print_summary: print the leaderboard at the end.
        methods, data, seeds: run only these method variants / data entries / seeds (names as in the suite; default
            all). The report still covers the whole suite: every run already done counts, the others show as missing.
        report_only: train and evaluate nothing (tune nothing); aggregate the finished runs and write the report.
        archive: a folder that keeps each finished run's full ``results.json`` (as ``<run folder>.json``) apart
            from its checkpoints: runs archived there count as done (they are restored into their folders when these
            lack them and the fingerprint matches), and every run finished now is archived (:func:`sync_archive`).
            ``mmib bench`` defaults to :func:`default_archive` (outside the checkout); the Python API to none.
        results: the suite's kept results file (e.g. ``docs/results/<suite>/results.json``): read first — its runs
            (``records``: fingerprint and final metrics) and tuning count as done, so a fresh clone continues the
            suite from it alone — and rewritten at the end (also when it is not given, ``<out>/results.json``).
        import_archive: a folder of full run records (``<run folder>.json``, an archive): every complete record of
            this suite's runs there enters the results, also one of an earlier configuration (flagged
            ``earlier_config`` and redone by the next run of the suite) — the one-off conversion of archives kept in
            the repository into ``docs/results/<suite>/results.json``.

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
    previous = previous_results(suite, out, results)
    if import_archive is not None:
        imported = import_records(suite, import_archive)
        previous["records"].update(imported)
        console.print(f"imported {len(imported)} run records of suite '{suite.name}' from {import_archive}",
                      highlight=False)
    tuned = None
    if suite.tune is not None:
        from mmib.bench.tune import known_tuning, tune_suite

        if report_only:
            tuned = known_tuning(suite, suite.tune, out / "tune", previous.get("tune"))
        else:
            only = [v for v in suite.tune.space if methods is None or v in methods]
            tuned = tune_suite(suite, out, previous.get("tune"), console, only=only)
    plan = plan_suite(suite, out, progress, previous=previous, tuned=tuned)
    arch = Path(archive) if archive is not None else None
    if arch is not None and not force:
        restored, _ = sync_archive(plan, arch)
        if restored:
            console.print(f"restored {restored} finished runs from the archive {arch}", highlight=False)
    selected = select_runs(suite, plan, methods, data, seeds)
    if force:
        for r in selected:
            r.record = None
            if r.folder.exists():
                r.status = "stale"
            elif r.status == "done":
                r.status = "new"
    todo = [] if report_only else [r for r in selected if r.status not in ("done", "tune")]
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
    # the finished studies of the suite's current tune block (done here or found in earlier results)
    summary = collect_suite(suite, out, plan, failures, seconds=time.time() - t0, tune=tuned or {})
    if not rank_zero:
        from mmib.utils.dist import launch_rank

        return {**summary, "skipped_on_rank": launch_rank()}
    write_bench_report(summary, out)
    if results is not None:
        from mmib.bench.results import write_kept_results

        write_kept_results(results, summary)
    if print_summary:
        print_leaderboard(summary, console)
        console.print(f"report: {out / 'report.md'}  results: {results or out / 'results.json'}", highlight=False)
    return summary


def import_records(suite: Suite, folder: str | Path) -> dict[str, dict[str, Any]]:
    """The complete run records of ``suite`` in an archive folder (slimmed), by run folder name."""
    names = {f"{v.name}-{d.name}-s{s}" for d in suite.data for v in suite.methods if v.runs_on(d.name)
             for s in suite.seeds}
    out = {}
    for p in sorted(Path(folder).glob("*.json")):
        res = _read_json(p)
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
        res = _read_json(r.folder / "results.json")
        current = True
        if not _complete_for(res, r.fingerprint):
            res = r.record if (r.record or {}).get("complete") else None
            # a kept record of an earlier configuration (another fingerprint): reported, flagged, until redone
            current = res is not None and _complete_for(res, r.fingerprint)
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
