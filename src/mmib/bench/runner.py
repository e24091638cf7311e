"""Run a bench suite: train and evaluate every (method variant, data set, seed) that is not already done.

``runs/bench/<suite>/<variant>-<data>-s<seed>/`` holds one engine run (config, checkpoints, logs) and its evaluation
(``results.json``, ``report.md``, ``plots/``). A folder is **done** when its ``results.json`` is complete and was
produced from the same configuration and protocols (a fingerprint): it is skipped. A run whose training finished but
whose evaluation did not is evaluated from its checkpoint; one whose training was interrupted resumes from
``last.ckpt``; a folder from another configuration is redone. The suite folder gets ``results.json`` (the
aggregate), ``report.md`` and ``plots/leaderboard.png``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmib.bench.archive import collect_suite, import_records, previous_results, sync_archive
from mmib.bench.plan import MARKER, PlannedRun, default_out_dir, plan_suite, select_runs
from mmib.bench.suite import Suite, load_suite
from mmib.errors import MMIBError


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
    return evaluate(method, dm, suite.protocols_for(run.data.name), out_dir=run.folder, run_dir=run.folder, config=c, seed=run.seed,
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
