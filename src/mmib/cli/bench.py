"""``mmib bench SUITE``: run a suite of methods × data sets × seeds × protocols (resumable) and rank them.

    mmib bench demo                         a packaged suite by name (mmib bench --list shows them)
    mmib bench path/to/suite.yaml --out runs/bench/mine
    mmib bench demo --dry-run               what is done and what would run
    mmib bench cox --data sim-semi --seeds 0  run part of a suite (the report still covers all of it)
    mmib bench cox --report-only            the report of the runs finished so far; trains nothing
    mmib bench cox --results docs/results/cox/results.json
                                            the suite's kept results (fingerprints + final metrics of every finished
                                            run, tuning, aggregates): runs recorded there count as done, so a fresh
                                            clone continues the suite from it; rewritten at the end
    mmib bench cox --archive /data/mmib-archive/cox
                                            full per-run records (default: $MMIB_ARCHIVE/<suite> or
                                            ~/.cache/mmib/archive/<suite>, outside the checkout; --no-archive: none)
"""

from __future__ import annotations

import argparse


def _cmd_bench(args: argparse.Namespace) -> int:
    from mmib.bench.suite import load_suite, packaged_suites

    if args.list or not args.suite:
        for name in packaged_suites():
            s = load_suite(name)
            own = sorted({v.name for v in s.methods if v.seeds is not None})
            seeds = f"{len(s.seeds)} seeds" + (f" ({len(s.all_seeds())} for {', '.join(own)})" if own else "")
            print(f"{name:<16} {len(s.methods)} variants × {len(s.data)} data × {seeds}  {s.description}")
        return 0
    suite = load_suite(args.suite)
    sel = {"methods": _names(args.methods), "data": _names(args.data),
           "seeds": [int(x) for x in _names(args.seeds)] if args.seeds else None}
    if args.dry_run:
        from pathlib import Path

        from mmib.bench.archive import previous_results, sync_archive
        from mmib.bench.plan import complete_for, default_out_dir, plan_suite, select_runs

        out = Path(args.out or default_out_dir(suite))
        plan = plan_suite(suite, out, previous=previous_results(suite, out, args.results))
        archive = _archive(args, suite.name)
        restorable = set()
        if archive is not None:
            for r in plan:
                if r.status not in ("done", "tune") and sync_archive([r], archive, restore=False)[0]:
                    restorable.add(r.folder)
        for r in select_runs(suite, plan, **sel):
            if r.folder in restorable:
                status = "archived"
            elif r.record is not None:  # in the results file: of this configuration, or of an earlier one (redone)
                status = "kept" if complete_for(r.record, r.fingerprint) else "stale"
            else:
                status = r.status
            print(f"{status:<9} {r.folder}")
        return 0
    from mmib.bench.runner import run_suite

    results = run_suite(suite, out_dir=args.out, force=args.force, progress=not args.no_progress,
                        fail_fast=args.fail_fast, report_only=args.report_only or bool(args.import_archive),
                        archive=args.import_archive or _archive(args, suite.name), results=args.results,
                        import_archive=args.import_archive, **sel)
    return 0 if not results["failures"] else 1


def _archive(args: argparse.Namespace, suite_name: str):
    from mmib.bench.archive import default_archive

    if args.no_archive:
        return None
    return args.archive or default_archive(suite_name)


def _names(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def register_cli(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("bench", help="run a bench suite (methods × data × seeds × protocols); resumable",
                       description="Train and evaluate every (method variant, data set, seed) of a suite that is not "
                                   "done yet, aggregate mean ± std over seeds, print the leaderboard and write "
                                   "runs/bench/<suite>/report.md + results.json.")
    b.add_argument("suite", nargs="?", help="a packaged suite name (see --list) or a suite YAML file")
    b.add_argument("--out", default=None, help="suite folder (default: runs/bench/<suite>)")
    b.add_argument("--force", action="store_true", help="redo every run, even the finished ones")
    b.add_argument("--dry-run", action="store_true", help="show each run's status (done, new, resume, ...) and stop")
    b.add_argument("--fail-fast", action="store_true", help="stop at the first failing run")
    b.add_argument("--methods", default=None, help="run only these method variants (comma-separated suite names)")
    b.add_argument("--data", default=None, help="run only these data entries (comma-separated suite names)")
    b.add_argument("--seeds", default=None, help="run only these seeds (comma-separated)")
    b.add_argument("--report-only", action="store_true",
                   help="train nothing: aggregate the finished runs and write the report (e.g. while a run is going)")
    b.add_argument("--archive", default=None, metavar="DIR",
                   help="keep every finished run's full results.json in DIR (<run>.json, checkpoints left out) and "
                        "count the runs archived there as done (default: $MMIB_ARCHIVE/<suite>, else "
                        "~/.cache/mmib/archive/<suite>; outside the checkout)")
    b.add_argument("--no-archive", action="store_true", help="archive nothing and restore nothing")
    b.add_argument("--results", default=None, metavar="FILE",
                   help="the suite's kept results file, e.g. docs/results/<suite>/results.json: the runs and tuning "
                        "recorded there (fingerprints, final metrics) count as done; rewritten at the end")
    b.add_argument("--import-archive", default=None, metavar="DIR",
                   help="train nothing: take every complete record of the suite's runs in DIR (<run>.json) into the "
                        "results (--results), also those of an earlier configuration (flagged, redone by the next run)")
    b.add_argument("--list", action="store_true", help="list the packaged suites")
    b.add_argument("--no-progress", action="store_true")
    b.set_defaults(func=_cmd_bench)
