"""``oom``: out-of-modal generalization (the COX setting), measured by :mod:`mmib.eval.oom` through the method's
declared OOM capability (:meth:`mmib.methods.base.Method.oom_state`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mmib.eval.protocols.base import Protocol, new_result, parse_options
from mmib.eval.tables import TableData, fmt

if TYPE_CHECKING:
    from mmib.eval.protocols.context import EvalContext


@dataclass
class OOMOptions:
    """``oom``: out-of-modal generalization (COX setting): accuracy of ``predict`` from the OOM modality alone,
    instance retrieval OOM ↔ IM on paired rows, and — for methods with optimal IM heads (``components``
    ``hstar:<k>``) — agreement/disagreement accuracies and the IM-mapping MMD (``mmib.eval.oom``)."""

    split: str = "test"
    ks: list[int] = field(default_factory=lambda: [1, 5])


def run_oom(ctx: EvalContext, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    from mmib.eval.metrics import finite_or_raise
    from mmib.eval.oom import evaluate_oom, oom_modality_of

    opt = parse_options(OOMOptions, options, "oom")
    res = new_result("oom", opt)
    oom = oom_modality_of(ctx.method)
    # the accuracy on the agreement / disagreement set is undefined (NaN) when the set is empty
    metrics = finite_or_raise(evaluate_oom(ctx.method, ctx.dm, split=opt.split, ks=tuple(opt.ks)), "oom protocol",
                              undefined=("acc_agree", "acc_disagree"))
    for k, set_name in (("acc_agree", "agreement"), ("acc_disagree", "disagreement")):
        if isinstance(metrics.get(k), float) and math.isnan(metrics[k]):
            res["notes"].append(f"{k} undefined: the {set_name} set of the {opt.split} rows is empty")
    n_classes = ctx.spec.n_classes or 0
    chance: dict[str, float] = {"accuracy": 1.0 / n_classes} if n_classes else {}
    gallery = metrics.pop("gallery_size", None)
    if gallery:
        for k in opt.ks:
            for d in ("oom->im", "im->oom"):
                if f"R@{k}/{d}" in metrics:
                    chance[f"R@{k}/{d}"] = min(1.0, k / gallery)
        res["notes"].append(f"retrieval gallery: {int(gallery)} paired {opt.split} rows")
    else:
        res["notes"].append(f"no paired {opt.split} rows: OOM retrieval not computed")
    res["rows"].append({"id": "method/oom", "source": "method", "label": f"{ctx.method.name} OOM {oom}",
                        "oom": oom, "metrics": metrics, "chance": chance})
    res["primary_metric"] = "accuracy"
    return res


def oom_tables(res: Mapping[str, Any]) -> list[TableData]:
    rows = res["rows"]
    if not rows:
        return []
    cols = list(rows[0]["metrics"])
    body = [[r["label"], *[fmt(r["metrics"][c], c) for c in cols]] for r in rows]
    body += [["chance", *[fmt(r["chance"][c], c) if c in r["chance"] else "—" for c in cols]] for r in rows[:1]]
    return [TableData(f"{res['name']}: out-of-modal generalization", ["method", *cols], body, list(res["notes"]))]


OOM = Protocol("oom", run_oom, OOMOptions, oom_tables)
