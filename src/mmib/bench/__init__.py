"""Bench suites: methods × data sets × seeds × protocols → results tables and a leaderboard.

* :func:`load_suite` reads a packaged suite by name or a YAML file (format: :mod:`mmib.bench.suite`);
* :func:`run_suite` runs what is not done yet (resumable) and writes ``runs/bench/<suite>/``;
* :func:`aggregate` / :func:`leaderboard` turn runs' ``results.json`` into mean ± std over seeds.

Names are imported lazily so that ``mmib --help`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Suite": "mmib.bench.suite", "load_suite": "mmib.bench.suite", "packaged_suites": "mmib.bench.suite",
    "run_suite": "mmib.bench.runner", "plan_suite": "mmib.bench.plan", "collect_suite": "mmib.bench.archive",
    "aggregate": "mmib.bench.aggregate", "leaderboard": "mmib.bench.aggregate",
    "flatten_results": "mmib.bench.aggregate",
    "render_bench_report": "mmib.bench.report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mmib.bench' has no attribute '{name}'")
