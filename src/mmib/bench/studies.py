"""Study analyses as evaluation protocols (registered on import; a suite lists this module under ``imports:``).

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
