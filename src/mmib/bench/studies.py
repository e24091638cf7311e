"""Study analyses as evaluation protocols (registered on import; a suite lists this module under ``imports:``).

* ``retrieval_mean`` and ``subset_sizes`` (suites ``alignment``, ``alignment-tau``, ``symile-checks``): the built-in
  ``retrieval`` and ``subsets`` protocols summarized as the papers table them — the mean over the retrieval directions,
  the mean over the modality subsets of each size.
* ``embedding_geometry`` (suite ``symile-geometry``, docs/results/alignment.md): on a split, the participation ratio
  (Σ z_d²)² / Σ z_d⁴ of each modality's embedding — the effective number of coordinates a sample uses —, instance
  retrieval of the first modality from all the others with the objective's own scorer (R@1; chance 1/N), and how
  often the top-1 candidate has the query's class (what a code identifying only the class reaches; its instance R@1
  is about 1 / rows per class).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmib.bench.extensions import register_protocol


@register_protocol("embedding_geometry", replace=True)
def embedding_geometry(ctx, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    import torch

    from mmib.data.dataset import batch_to_device
    from mmib.errors import UnknownNameError

    opts = {"split": "test", **dict(options or {})}
    for k in opts:
        if k != "split":
            raise UnknownNameError("option of protocol 'embedding_geometry'", k, ["split"])
    method, dm = ctx.method, ctx.dm
    method.eval()
    b = dm.split_batch(opts["split"])
    y = b["y"]
    with torch.no_grad():
        e = method.embed(batch_to_device(b, method.device), space="embedding")
        names, zs = list(e), [v.double().cpu() for v in e.values()]
        pr = [float(((v ** 2).sum(1) ** 2 / (v ** 4).sum(1)).mean()) for v in zs]
        scorer = getattr(method.objective, "score", None)
        if scorer is not None:
            s = scorer([z.float() for z in zs[1:]], zs[0].float())
        else:
            s = method.score({n: z.float() for n, z in zip(names[1:], zs[1:])}, zs[0].float())
    top = s.argmax(1).cpu()
    n = len(y)
    metrics = {**{f"participation_ratio/{m}": p for m, p in zip(names, pr)},
               "R@1": float((top == torch.arange(n)).double().mean()),
               "top1_same_class": float((y[top] == y).double().mean()),
               "inverse_rows_per_class": float(len(torch.unique(y))) / n}
    return {"protocol": "embedding_geometry", "options": opts, "plots": {}, "primary_metric": "R@1",
            "notes": [f"{opts['split']} split: {n} rows; retrieval of {names[0]} from {', '.join(names[1:])}"],
            "rows": [{"id": "method/geometry", "source": "method", "label": f"{method.name} embeddings",
                      "metrics": metrics, "chance": {"R@1": 1.0 / n}}]}


def _mean_row(rows: list[dict[str, Any]], row_id: str, label: str, metrics: list[str] | None,
              extra: Mapping[str, Any]) -> dict[str, Any]:
    """The mean over ``rows`` of each metric (and chance level) they all carry."""
    import numpy as np

    names = [m for m in rows[0]["metrics"] if all(m in r["metrics"] for r in rows)]
    if metrics is not None:
        names = [m for m in metrics if m in names]
    mean = {m: float(np.mean([float(r["metrics"][m]) for r in rows])) for m in names}
    chance = {m: float(np.mean([float(r["chance"][m]) for r in rows])) for m in names
              if all((r.get("chance") or {}).get(m) is not None for r in rows)}
    return {"id": row_id, "source": rows[0].get("source", "method"), "label": label, "metrics": mean,
            "chance": chance, **extra}


def _split_options(options: Mapping[str, Any] | None, protocol: str, default: list[str] | None):
    opts = dict(options or {})
    metrics = opts.pop("metrics", default)
    if metrics is not None and (not isinstance(metrics, (list, tuple)) or not all(isinstance(m, str)
                                                                                   for m in metrics)):
        from mmib.errors import MMIBError

        raise MMIBError(f"protocol '{protocol}': 'metrics' is a list of metric names, got {metrics!r}")
    return opts, (list(metrics) if metrics is not None else None)


@register_protocol("retrieval_mean", replace=True)
def retrieval_mean(ctx, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Retrieval summarized as the papers report it (suite ``alignment``): the built-in ``retrieval`` protocol with the
    same options (``directions``, ``split``, …), then per source the mean over its directions of each metric; only
    these mean rows are kept (the per-direction rows are in the run's archive record). Option ``metrics`` (default
    R@1, mAP, class_top1, acc_1_of_10): the metrics kept. Aggregated over seeds this is the mean over directions per
    seed, then mean ± std over seeds."""
    from mmib.eval.protocols import run_retrieval

    opts, metrics = _split_options(options, "retrieval_mean", ["R@1", "mAP", "class_top1", "acc_1_of_10"])
    res = run_retrieval(ctx, opts)
    out_rows = []
    for source in dict.fromkeys(r["source"] for r in res["rows"]):
        rows = [r for r in res["rows"] if r["source"] == source]
        dirs = [r["direction"] for r in rows]
        out_rows.append(_mean_row(rows, f"{source}/mean", f"{source}: mean over {len(rows)} directions", metrics,
                                  {"directions": dirs, "n_candidates": rows[0].get("n_candidates")}))
    notes = [*res["notes"], *(f"{r['id']}: mean over {', '.join(r['directions'])}" for r in out_rows)]
    return {"protocol": "retrieval_mean", "options": {**dict(res.get("options") or {}), "metrics": metrics},
            "plots": res.get("plots", {}), "primary_metric": "R@1", "notes": notes, "rows": out_rows,
            "per_direction": res["rows"]}


@register_protocol("subset_sizes", replace=True)
def subset_sizes(ctx, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Modality subsets summarized (suite ``alignment``; the OVA-IB paper's Tables 2, 5–11): the built-in ``subsets``
    protocol with the same options, then per source the mean over the subsets of each size (``<source>/size-k``) and
    over every subset (``<source>/all-subsets``). Option ``metrics`` (default: the task's primary metric)."""
    from mmib.eval.protocols import primary_metric, run_subsets

    opts, metrics = _split_options(options, "subset_sizes", None)
    res = run_subsets(ctx, opts)
    metrics = metrics or [res.get("primary_metric") or primary_metric(ctx.spec.task)]
    out_rows = []
    m = len(ctx.modalities)
    probe_rows = [r for r in res["rows"] if "size" in r and "probe" in r]  # not the own-prediction rows
    for source in dict.fromkeys(r["source"] for r in probe_rows):
        rows = [r for r in probe_rows if r["source"] == source]
        for k in sorted({r["size"] for r in rows}):
            sub = [r for r in rows if r["size"] == k]
            out_rows.append(_mean_row(sub, f"{source}/size-{k}", f"{source}: mean over the {len(sub)} subsets of "
                                      f"{k} of {m} modalities", metrics, {"size": k, "n_subsets": len(sub)}))
        out_rows.append(_mean_row(rows, f"{source}/all-subsets", f"{source}: mean over all {len(rows)} subsets",
                                  metrics, {"n_subsets": len(rows)}))
    return {"protocol": "subset_sizes", "options": {**dict(res.get("options") or {}), "metrics": metrics},
            "plots": res.get("plots", {}), "primary_metric": metrics[0], "notes": res["notes"], "rows": out_rows,
            "per_subset": res["rows"]}
