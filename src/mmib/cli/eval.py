"""``mmib eval`` (evaluate a trained run) and ``mmib report`` (render one evaluation or compare several).

    mmib eval runs/clip-mfeat-s0                               probe, subsets, retrieval, info_probe, plots
    mmib eval runs/clip-mfeat-s0 --protocols probe,retrieval --probe linear,mlp --retrieval "fou+fac->kar"
    mmib eval runs/clip-mfeat-s0 --option subsets.sizes=[1,2] --option plots.tsne=false
    mmib eval runs/clip-mfeat-s0 --jobs 1                      the protocols one after the other
    mmib report runs/clip-mfeat-s0                             re-render report.md and print the tables
    mmib report runs/a runs/b --out compare.md                 compare several evaluations side by side
    mmib report --suite cox --into docs/results/cox.md         a suite's tables (from docs/results/cox/results.json)
                                                               between <!-- mmib:begin cox --> / <!-- mmib:end cox -->
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mmib.errors import MMIBError


def _parse_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise MMIBError(f"cannot parse option value {text!r}: {str(e).splitlines()[0]}") from None


def build_protocols(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The protocol list of ``mmib eval`` from its flags (each protocol as ``{"protocol": kind, <options>}``)."""
    from mmib.eval.protocols import DEFAULT_PROTOCOLS, PROTOCOLS

    names = [s.strip() for s in (args.protocols or ",".join(DEFAULT_PROTOCOLS)).split(",") if s.strip()]
    for n in names:
        if n not in PROTOCOLS:
            from mmib.errors import UnknownNameError

            raise UnknownNameError("protocol", n, list(PROTOCOLS))
    opts: dict[str, dict[str, Any]] = {n: {} for n in names}
    probes = [p.strip() for p in args.probe.split(",") if p.strip()]
    if "probe" in opts:
        opts["probe"]["probes"] = probes
        opts["probe"]["representations"] = [r.strip() for r in args.representation.split(",") if r.strip()]
        if args.modalities:
            opts["probe"]["modalities"] = [m.strip() for m in args.modalities.split(",") if m.strip()]
    if "subsets" in opts:
        opts["subsets"]["probe"] = args.subsets_probe
        rep = args.representation.split(",")[0].strip()
        opts["subsets"]["representation"] = rep if rep != "components" else "concat"
    if "retrieval" in opts and args.retrieval:
        opts["retrieval"]["directions"] = args.retrieval
    for item in args.option or []:
        key, sep, value = item.partition("=")
        proto, dot, opt = key.partition(".")
        if not sep or not dot or not opt:
            raise MMIBError(f"--option '{item}': expected PROTOCOL.OPTION=VALUE, e.g. subsets.sizes=[1,2]")
        if proto not in opts:
            raise MMIBError(f"--option '{item}': protocol '{proto}' is not run (running: {', '.join(names)})")
        opts[proto][opt] = _parse_value(value)
    return [{"protocol": n, **o} for n, o in opts.items()]


def _cmd_eval(args: argparse.Namespace) -> int:
    from mmib.eval.evaluate import evaluate_run
    from mmib.eval.report import print_results

    protocols = build_protocols(args)
    run = Path(args.run)
    out = Path(args.out) if args.out else (run.parent.parent if run.suffix == ".ckpt" else run)
    results = evaluate_run(args.run, protocols, out_dir=out, progress=not args.no_progress, seed=args.seed,
                           trust_pickle=args.trust_pickle, cache=not args.no_cache, jobs=args.jobs)
    if results.get("skipped_on_rank"):  # several processes (torchrun / srun): rank 0 alone evaluates and reports
        return 0
    print_results(results)
    print(f"report: {out / 'report.md'}  results: {out / 'results.json'}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from mmib.eval.report import load_results, print_results, render_comparison, render_markdown
    from mmib.utils.io import atomic_write_text

    if args.suite:
        return _report_suite(args)
    if args.into:
        raise MMIBError("mmib report: --into renders a suite's tables; give --suite NAME")
    if not args.runs:
        raise MMIBError("mmib report: give run / suite folders, or --suite NAME --into PAGE")
    loaded = []
    for path in args.runs:
        r = load_results(path)
        if r.get("kind") == "mmib-bench":
            from mmib.bench.results import unpack_results

            r = unpack_results(r)
            from mmib.bench.report import print_leaderboard, render_bench_report

            folder = Path(path) if Path(path).is_dir() else Path(path).parent
            atomic_write_text(folder / "report.md", render_bench_report(r))
            print_leaderboard(r)
            print(f"report: {folder / 'report.md'}")
            if len(args.runs) > 1:
                raise MMIBError("mmib report: compare bench suites by their leaderboards; give one suite folder")
            return 0
        if r.get("kind") != "mmib-eval":
            raise MMIBError(f"'{path}': results.json is not an mmib evaluation (kind {r.get('kind')!r})")
        loaded.append((Path(path) if Path(path).is_dir() else Path(path).parent, r))
    if len(loaded) == 1:
        folder, r = loaded[0]
        text = render_markdown(r)
        target = Path(args.out) if args.out else folder / "report.md"
        atomic_write_text(target, text)
        print_results(r)
        print(f"report: {target}")
        return 0
    text = render_comparison([r for _, r in loaded], [str(f) for f, _ in loaded])
    print(text)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"comparison: {args.out}")
    return 0


def _report_suite(args: argparse.Namespace) -> int:
    from mmib.bench.report import print_leaderboard, render_bench_report, write_suite_into
    from mmib.eval.report import load_results

    if args.runs:
        raise MMIBError("mmib report --suite: give the suite by name alone (its results file with --results)")
    from mmib.bench.results import unpack_results

    path = Path(args.results) if args.results else Path("docs") / "results" / args.suite / "results.json"
    r = unpack_results(load_results(path))
    if r.get("kind") != "mmib-bench" or r["suite"]["name"] != args.suite:
        raise MMIBError(f"'{path}' is not the results of bench suite '{args.suite}' (kind {r.get('kind')!r}, suite "
                        f"{(r.get('suite') or {}).get('name')!r})")
    print_leaderboard(r)
    if args.into:
        print(f"tables of suite '{args.suite}' written into {write_suite_into(r, args.into)}")
    elif args.out:
        from mmib.utils.io import atomic_write_text

        atomic_write_text(args.out, render_bench_report(r))
        print(f"report: {args.out}")
    return 0


def register_cli(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("eval", help="evaluate a trained run: probes, modality subsets, retrieval, information probes, "
                                    "plots; writes results.json + report.md",
                       description="Evaluate a trained run through the Method interface. Protocols: probe, subsets, "
                                   "retrieval, info_probe, plots (default: all; info_probe needs ground-truth latents).")
    e.add_argument("run", help="run folder (runs/<name>) or a .ckpt file")
    e.add_argument("--protocols", default=None, help="comma-separated protocols (default: all)")
    e.add_argument("--probe", default="linear,mlp",
                   help="probes of the probe protocol: linear (softmax regression, CE) and/or mlp (4-layer MLP)")
    e.add_argument("--subsets-probe", default="linear", choices=["linear", "mlp"], help="probe of the subsets protocol")
    e.add_argument("--modalities", default=None, help="comma-separated modalities of the probe protocol (default: all)")
    e.add_argument("--representation", default="concat",
                   help="comma-separated: concat | fused | component:<name> | components")
    e.add_argument("--retrieval", default=None,
                   help="directions, e.g. 'resp+ecg->bvp,ecg->bvp'; auto (default: all others -> each) | pairs")
    e.add_argument("--option", action="append", metavar="PROTOCOL.OPTION=VALUE",
                   help="any protocol option, e.g. subsets.sizes=[1,2], plots.color_by=latent:z (repeatable)")
    e.add_argument("--out", default=None, help="output folder (default: the run folder)")
    e.add_argument("--no-cache", action="store_true",
                   help="extract the representations again instead of reusing <run>/cache/representations (kept "
                        "per checkpoint hash), and fit the raw-feature probes again instead of reading them from "
                        "$MMIB_CACHE_DIR/probes (kept per content hash of their inputs)")
    e.add_argument("--seed", type=int, default=None, help="probe seed (default: the run's seed)")
    e.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="protocols run at once, each in a thread at one torch thread (default: the usable cores, at "
                        "most 2; 1: one after the other). Same results; shorter wall time when a core is free")
    e.add_argument("--no-progress", action="store_true")
    e.add_argument("--trust-pickle", action="store_true",
                   help="honour data.trust_pickle from the run's config.yaml (unpickling the data set's files can run "
                        "code: only for a run folder and data files you trust); ignored by default")
    e.set_defaults(func=_cmd_eval)

    r = sub.add_parser("report", help="render an evaluation's report.md, or compare several evaluations",
                       description="With one folder: re-render its report.md from results.json and print the tables. "
                                   "With several: a side-by-side comparison (printed; written with --out). A bench "
                                   "suite folder re-renders the suite's report.")
    r.add_argument("runs", nargs="*", help="folders holding results.json (runs, eval outputs, bench suites)")
    r.add_argument("--out", default=None, help="where to write the report (one run) or the comparison (several)")
    r.add_argument("--suite", default=None, metavar="NAME",
                   help="a bench suite's kept results (docs/results/NAME/results.json, or --results FILE)")
    r.add_argument("--into", default=None, metavar="PAGE",
                   help="with --suite: render the suite's tables into PAGE between <!-- mmib:begin NAME --> and "
                        "<!-- mmib:end NAME --> (text outside the markers stays; without them the block is appended)")
    r.add_argument("--results", default=None, metavar="FILE", help="with --suite: the suite's results file")
    r.set_defaults(func=_cmd_report)
