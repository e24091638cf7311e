"""``mmib bench SUITE``: run a suite of methods × data sets × seeds × protocols (resumable) and rank them.

    mmib bench demo                         a packaged suite by name (mmib bench --list shows them)
    mmib bench path/to/suite.yaml --out runs/bench/mine
    mmib bench demo --dry-run               what is done and what would run
    mmib bench cox --data sim-semi --seeds 0  run part of a suite (the report still covers all of it)
    mmib bench cox --report-only            the report of the runs finished so far; trains nothing
    mmib bench ib-fusion --archive docs/results/ib-fusion/runs
                                            keep finished runs' results there (e.g. in git): a later session or
                                            another machine continues the suite from them
"""

from __future__ import annotations

import argparse


def _cmd_bench(args: argparse.Namespace) -> int:
    from mmib.bench.suite import load_suite, packaged_suites

    if args.list or not args.suite:
        for name in packaged_suites():
            s = load_suite(name)
            print(f"{name:<16} {len(s.methods)} variants × {len(s.data)} data × {len(s.seeds)} seeds  {s.description}")
        return 0
    suite = load_suite(args.suite)
    sel = {"methods": _names(args.methods), "data": _names(args.data),
           "seeds": [int(x) for x in _names(args.seeds)] if args.seeds else None}
    if args.dry_run:
        from mmib.bench.runner import default_out_dir, plan_suite, select_runs, sync_archive

        out = args.out or default_out_dir(suite)
        plan = plan_suite(suite, out)
        restorable = set()
        if args.archive:
            for r in plan:
                if r.status != "done" and sync_archive([r], args.archive, restore=False)[0]:
                    restorable.add(r.folder)
        for r in select_runs(suite, plan, **sel):
            print(f"{'archived' if r.folder in restorable else r.status:<9} {r.folder}")
        return 0
    from mmib.bench.runner import run_suite

    results = run_suite(suite, out_dir=args.out, force=args.force, progress=not args.no_progress,
                        fail_fast=args.fail_fast, report_only=args.report_only, archive=args.archive, **sel)
    return 0 if not results["failures"] else 1


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
                   help="keep every finished run's results.json in DIR (<run>.json, checkpoints left out) and count "
                        "the runs archived there as done: a suite too long for one session is finished piecewise")
    b.add_argument("--list", action="store_true", help="list the packaged suites")
    b.add_argument("--no-progress", action="store_true")
    b.set_defaults(func=_cmd_bench)
