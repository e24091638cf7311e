"""The COX study's analyses inside the packaged ``cox`` suite (registered on import; the suite lists this module under
``imports:``). They replace ``benchmarks/cox_study.py``.

* :class:`OOMTrace` — a per-run Lightning callback (suite key ``callbacks:``): after every training epoch it records
  the Fig. 5 / Fig. 6 quantities of :class:`mmib.eval.oom.OOMTracker` — OOM test accuracy, accuracy on the agreement
  set A and the disagreement set D of the optimal heads ``h_k^*``, |D| fraction, ``h_k^*`` accuracy, the MMD² between
  the mapped IM features and the OOM features, the mean posterior entropy of ``h^O`` on A and D, and the accuracy of
  the epoch's anchor pseudo-labels against the hidden OOM training labels — into ``oom_trace.json`` in the run folder.
  Evaluation only: the hidden labels are read from the data module, never by the method, nothing reaches a loss and no
  global random state is drawn (MMD subsets use a seeded generator), so a run trains the same with or without it. The
  history is part of the callback's checkpoint state, so a resumed run keeps its earlier epochs.
* ``oom_trace`` — a registered evaluation protocol: one row per epoch (``trace/epoch-01`` …) of the run's
  ``oom_trace.json``, so the bench aggregates every epoch over seeds (mean ± sample std) and tables it. Derived
  metrics: ``gap`` = acc_agree − acc_disagree, ``mmd`` and ``hstar_acc`` = means over the IM modalities (their
  names differ between data sets). A run without a trace (a variant without the callback) gives no rows.
* :func:`plot_traces` — the per-epoch curves (thin: one seed, bold: the mean) drawn from a suite's kept results file
  (``python -m mmib.bench.study_cox --results docs/results/cox/results.json --plot docs/results/cox/training-curves.png``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L

from mmib.bench.extensions import register_protocol
from mmib.errors import MMIBError, UnknownNameError

TRACE_FILE = "oom_trace.json"
#: every metric a trace row can carry (``oom_trace``'s ``metrics`` option picks the tabled ones)
TRACE_METRICS = ("accuracy", "acc_agree", "acc_disagree", "gap", "frac_disagree", "hstar_acc", "mmd",
                 "entropy_agree", "entropy_disagree", "anchor_acc", "n_anchor")
DEFAULT_METRICS = ("accuracy", "acc_agree", "acc_disagree", "gap", "frac_disagree", "mmd", "entropy_disagree",
                   "anchor_acc")


def _derived(rec: Mapping[str, Any]) -> dict[str, float]:
    """The record with the cross-data-set summaries: gap, and the means over IM modalities of mmd / hstar_acc."""
    out = {k: float(v) for k, v in rec.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    if "acc_agree" in out and "acc_disagree" in out:
        out["gap"] = out["acc_agree"] - out["acc_disagree"]
    for name in ("mmd", "hstar_acc"):
        vals = [v for k, v in out.items() if k.startswith(f"{name}/")]
        if vals:
            out[name] = sum(vals) / len(vals)
    return out


class OOMTrace(L.Callback):
    """Per-epoch Fig. 5 / Fig. 6 trace of a COX-family run into ``<run folder>/<file>`` (see the module docstring).

    Args:
        every_n_epochs: record after every n-th training epoch.
        split: the split the accuracies, A/D sets and entropies are measured on (MMD: train-split IM mappings vs this
            split's OOM features).
        file: the file name in the run folder (``trainer.default_root_dir``).
    """

    def __init__(self, every_n_epochs: int = 1, split: str = "test", file: str = TRACE_FILE):
        super().__init__()
        if not isinstance(every_n_epochs, int) or every_n_epochs < 1:
            raise MMIBError(f"OOMTrace: every_n_epochs must be an integer >= 1, got {every_n_epochs!r}")
        if not isinstance(file, str) or not file or "/" in file:
            raise MMIBError(f"OOMTrace: file must be a plain file name, got {file!r}")
        self.every, self.split, self.file = every_n_epochs, str(split), file
        self.history: list[dict[str, Any]] = []
        self._tracker = None

    @property
    def state_key(self) -> str:
        return f"OOMTrace[{self.file}]"

    def state_dict(self) -> dict[str, Any]:
        return {"history": [dict(h) for h in self.history]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = [dict(h) for h in state_dict.get("history", [])]

    def _make_tracker(self, trainer, pl_module):
        from mmib.eval.oom import OOMTracker, oom_state_of

        dm = getattr(trainer, "datamodule", None)
        if dm is None or not hasattr(dm, "split_batch"):
            raise MMIBError("OOMTrace: the run trains without an mmib data module (trainer.datamodule)")
        state = oom_state_of(pl_module)  # a clear error for a method without an OOM modality
        return OOMTracker(dm, split=self.split, every_n_epochs=1, with_heads=state.connections)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch
        if (epoch + 1) % self.every:
            return
        if self._tracker is None:
            self._tracker = self._make_tracker(trainer, pl_module)
        self._tracker.history = []
        self._tracker.on_train_epoch_end(trainer, pl_module)
        rec = self._tracker.history[-1]
        self.history = [h for h in self.history if h["epoch"] < rec["epoch"]] + [rec]
        if trainer.is_global_zero:
            from mmib.utils.io import atomic_write_json

            atomic_write_json(Path(trainer.default_root_dir) / self.file, {"every_n_epochs": self.every,
                                                                          "split": self.split,
                                                                          "history": self.history})


def read_trace(run_dir: str | Path | None, file: str = TRACE_FILE) -> list[dict[str, Any]] | None:
    """The per-epoch records of a run folder's trace, or None when the run has none."""
    if run_dir is None:
        return None
    p = Path(run_dir) / file
    if not p.is_file():
        return None
    try:
        data = json.loads(p.read_text())
    except ValueError as e:
        raise MMIBError(f"oom_trace: '{p}' is not valid JSON ({e})") from None
    hist = data.get("history") if isinstance(data, Mapping) else None
    if not isinstance(hist, list):
        raise MMIBError(f"oom_trace: '{p}' holds no 'history' list")
    return hist


@register_protocol("oom_trace", replace=True)
def oom_trace(ctx, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One row per recorded epoch of the run's :class:`OOMTrace` file, with the chosen ``metrics``."""
    opts = {"file": TRACE_FILE, "metrics": list(DEFAULT_METRICS), **dict(options or {})}
    for k in opts:
        if k not in ("file", "metrics"):
            raise UnknownNameError("option of protocol 'oom_trace'", str(k), ["file", "metrics"])
    metrics = opts["metrics"]
    if isinstance(metrics, str):
        metrics = [metrics]
    if not isinstance(metrics, (list, tuple)) or not metrics:
        raise MMIBError(f"oom_trace: 'metrics' must be a non-empty list, got {metrics!r}")
    for m in metrics:
        if m not in TRACE_METRICS:
            raise UnknownNameError("metric of protocol 'oom_trace'", str(m), list(TRACE_METRICS))
    opts["metrics"] = list(metrics)
    res = {"protocol": "oom_trace", "options": opts, "plots": {}, "primary_metric": metrics[0], "notes": [],
           "rows": []}
    hist = read_trace(ctx.run_dir, opts["file"])
    if hist is None:
        res["notes"].append(f"no per-epoch trace ('{opts['file']}') in the run folder: this variant runs without "
                            "the OOMTrace callback")
        return res
    for rec in hist:
        d = _derived(rec)
        e = int(d["epoch"])
        row = {"id": f"trace/epoch-{e:02d}", "source": "method",
               "label": f"epoch {e}" + (f" ({rec['phase']})" if isinstance(rec.get("phase"), str) else ""),
               "metrics": {m: d.get(m, float("nan")) for m in metrics}}
        res["rows"].append(row)
    res["notes"].append(f"per-epoch trace of {len(hist)} epochs (mmib.bench.study_cox.OOMTrace)")
    return res


# ------------------------------------------------------------------------------------------------------ figure
def trace_series(results: Mapping[str, Any], data: str, variant: str, metric: str
                 ) -> tuple[list[int], dict[int, list[float]]]:
    """(epochs, seed → values per epoch) of one variant's ``oom_trace`` metric on one data entry of a suite's
    results (the aggregate keeps every seed's value)."""
    recs = [a for a in results["aggregate"] if a["kind"] == "oom_trace" and a["data"] == data
            and a["variant"] == variant and a["metric"] == metric]
    recs.sort(key=lambda a: a["row"])
    epochs = [int(a["row"].rsplit("-", 1)[1]) for a in recs]
    per_seed: dict[int, list[float]] = {}
    for a in recs:
        for s, v in zip(a["seeds"], a["values"]):
            per_seed.setdefault(int(s), []).append(float(v))
    return epochs, per_seed


def plot_traces(results: Mapping[str, Any], out: str | Path, data: str,
                variants: Sequence[str], metrics: Sequence[str] = ("acc_agree", "acc_disagree", "mmd")) -> Path:
    """Per-epoch curves of ``variants`` on ``data``: one panel per metric, thin lines one seed, bold the mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    titles = {"acc_agree": "accuracy on the agreement set A", "acc_disagree": "accuracy on the disagreement set D",
              "mmd": "MMD² (mapped IM features vs OOM features, mean over IM)", "accuracy": "OOM test accuracy",
              "entropy_disagree": "entropy of h^O on D (nats)", "gap": "acc A − acc D"}
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4.2), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    drawn = 0
    for n, v in enumerate(variants):
        col = colors[n % len(colors)]
        for ax, m in zip(axes[0], metrics):
            epochs, per_seed = trace_series(results, data, v, m)
            if not epochs:
                continue
            curves = np.array([vals for vals in per_seed.values() if len(vals) == len(epochs)], float)
            for c in curves:
                ax.plot(epochs, c, color=col, lw=0.6, alpha=0.4)
            with np.errstate(all="ignore"):
                mean = np.nanmean(curves, axis=0) if len(curves) else np.full(len(epochs), math.nan)
            ax.plot(epochs, mean, color=col, lw=2, label=f"{v} (n={len(curves)})")
            drawn += 1
    if not drawn:
        raise MMIBError(f"plot_traces: no oom_trace values for {list(variants)} on '{data}' in the results")
    for ax, m in zip(axes[0], metrics):
        ax.set_title(titles.get(m, m), fontsize=10)
        ax.set_xlabel("epoch")
        if m == "mmd":
            ax.set_yscale("log")
    axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle(f"COX over training on {data} (Fig. 5 / 6): thin = one seed, bold = mean over seeds")
    fig.tight_layout()
    from mmib.utils.io import save_figure_png

    try:
        return save_figure_png(fig, out, dpi=90)
    finally:
        plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    from mmib.bench.results import read_results

    ap = argparse.ArgumentParser(description="Per-epoch COX curves from a suite's kept results file.")
    ap.add_argument("--results", default="docs/results/cox/results.json")
    ap.add_argument("--plot", required=True, help="the PNG to write")
    ap.add_argument("--data", default="sim-semi")
    ap.add_argument("--variants", nargs="+", default=["cox", "cox-no_exploration", "cox-kl_weight-0.1",
                                                       "cox-anchors_labeled"])
    ap.add_argument("--metrics", nargs="+", default=["acc_agree", "acc_disagree", "mmd"])
    a = ap.parse_args(argv)
    print(plot_traces(read_results(a.results), a.plot, a.data, a.variants, a.metrics))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
