"""Evaluation protocols: probes, modality subsets, retrieval, information probes, plots, reports.

Every protocol works for every method through the Method interface alone (DESIGN.md). Entry points:

* :func:`evaluate` (a method + data module in memory) and :func:`evaluate_run` (a run folder) run protocols and
  write ``results.json``, ``report.md`` and ``plots/*.png``;
* :func:`fit_probe` / :func:`train_probe`, :func:`retrieval_metrics` and friends for the building blocks;
* ``mmib eval RUN_DIR`` and ``mmib report RUN_DIR [RUN_DIR...]`` on the command line.

Names are imported lazily so that ``mmib --help`` (which imports :mod:`mmib.cli.eval`) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "evaluate": "mmib.eval.evaluate", "evaluate_run": "mmib.eval.evaluate", "is_complete": "mmib.eval.evaluate",
    "write_results": "mmib.eval.evaluate",
    "classification_metrics": "mmib.eval.metrics", "regression_metrics": "mmib.eval.metrics",
    "retrieval_chance": "mmib.eval.metrics", "retrieval_metrics": "mmib.eval.metrics",
    "ProbeConfig": "mmib.eval.probe", "ProbeResult": "mmib.eval.probe", "fit_probe": "mmib.eval.probe",
    "train_probe": "mmib.eval.probe",
    "DEFAULT_PROTOCOLS": "mmib.eval.protocols", "PROTOCOLS": "mmib.eval.protocols",
    "EvalContext": "mmib.eval.protocols", "parse_protocols": "mmib.eval.protocols",
    "load_results": "mmib.eval.report", "render_comparison": "mmib.eval.report",
    "render_markdown": "mmib.eval.report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mmib.eval' has no attribute '{name}'")
