"""``eeg_fnirs_analyses``: MLP probes of the synergy-type targets and, for R/U/S models, the component norms' Spearman
ρ with A, cross-modal retrieval with the R heads and the mean |cos| between components (see
:mod:`mmib.bench.study_eeg_fnirs`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mmib.bench.extensions import register_protocol
from mmib.bench.study_eeg_fnirs.probes import (
    RUS_COMPONENTS,
    TARGETS,
    chance_level,
    latents_of,
    method_arrays,
    rows_for,
    sorted_indices,
    split_indices_of,
    target_values,
)


@dataclass
class AnalysesOptions:
    """``eeg_fnirs_analyses`` options: the targets of the MLP probes and whether to run them."""

    mlp_targets: list[str] = field(default_factory=lambda: ["synergy", "tau", "efficiency"])
    mlp: bool = True


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


@register_protocol("eeg_fnirs_analyses", replace=True)
def eeg_fnirs_analyses(ctx, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    import torch

    from mmib.data.dataset import batch_to_device
    from mmib.errors import UnknownNameError
    from mmib.eval.metrics import retrieval_metrics
    from mmib.eval.probe import ProbeConfig, fit_probe
    from mmib.eval.protocols import parse_options

    opt = parse_options(AnalysesOptions, options, "eeg_fnirs_analyses")
    for t in opt.mlp_targets:
        if t not in TARGETS:
            raise UnknownNameError("target of eeg_fnirs_analyses.mlp_targets", t, list(TARGETS))
    out = {"protocol": "eeg_fnirs_analyses", "options": asdict(opt), "plots": {}, "primary_metric": "score",
           "notes": [], "rows": []}
    lat = latents_of(ctx)
    idx = sorted_indices(split_indices_of(ctx))
    is_rus = ctx.capable("components") and set(RUS_COMPONENTS) <= set(ctx.component_names())
    if is_rus:
        comps, _ = method_arrays(ctx, idx, False)
        reps = {"S": ["S"], "RU": ["R_eeg", "R_fnirs", "U_eeg", "U_fnirs"], "all five": list(RUS_COMPONENTS)}
    else:
        feats = ctx.features("train", ctx.modalities, ["concat"])
        comps = {s: {"concat": (feats if s == "train" else ctx.features(s, ctx.modalities, ["concat"]))
                     .features["concat"]} for s in idx}
        # ctx.features keeps the split's order: align with the sorted indices
        for s in idx:
            order = np.argsort(np.asarray(ctx.dm.indices[s]))
            comps[s]["concat"] = comps[s]["concat"][order]
        reps = {"concat": ["concat"]}
    if opt.mlp:
        for target in opt.mlp_targets:
            task = TARGETS[target][0]
            rows = rows_for(lat, target, idx)
            y = {s: target_values(lat, target, r) for s, r in rows.items()}
            for rep, names in reps.items():
                x = {s: np.concatenate([comps[s][n][np.searchsorted(idx[s], rows[s])] for n in names], 1)
                     for s in idx}
                cfg = ProbeConfig(kind="mlp", seed=ctx.seed)
                r = fit_probe(x["train"], y["train"], x["val"], y["val"], x["test"], y["test"], task,
                              int(ctx.spec.latents[target]) or None if task == "classification" else None, cfg)
                score = r.metrics["balanced_accuracy" if task == "classification" else "r2"]
                out["rows"].append({"id": f"mlp/{rep}/{target}", "source": "method", "representation": rep,
                                    "latent": target, "label": f"MLP probe {rep} → {target}",
                                    "metrics": {"score": float(score)},
                                    "chance": {"score": chance_level(task, y["train"])}})
    if not is_rus:
        return out
    task_rows = idx["test"][lat["e"][idx["test"]] == 1]
    pos = np.searchsorted(idx["test"], task_rows)
    for c in RUS_COMPONENTS:
        rho = _spearman(np.linalg.norm(comps["test"][c][pos], axis=1), lat["A"][task_rows])
        out["rows"].append({"id": f"norm-vs-A/{c}", "source": "method", "label": f"Spearman ρ(‖Z_{c}‖, A), task trials",
                            "metrics": {"score": rho}, "chance": {"score": 0.0}})
    method = ctx.method
    b = batch_to_device(ctx.dm.dataset.get_batch(idx["test"]), method.device)
    with torch.no_grad():
        emb = method.embed(b, ctx.modalities, space="embedding")
        scores = method.score({"eeg": emb["eeg"]}, emb["fnirs"]).float().cpu().numpy()
    rm = retrieval_metrics(scores)
    n = len(idx["test"])
    for k in (1, 5):
        out["rows"].append({"id": f"retrieval/eeg->fnirs (Z_R) R@{k}", "source": "method",
                            "label": f"EEG → fNIRS retrieval with the R heads, R@{k}",
                            "metrics": {"score": float(rm[f"R@{k}"])}, "chance": {"score": min(1.0, k / n)}})
    cn = {k: v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12) for k, v in comps["test"].items()
          if k in RUS_COMPONENTS}
    keys = list(RUS_COMPONENTS)
    for i, a in enumerate(keys):
        for bb in keys[i + 1:]:
            out["rows"].append({"id": f"abs-cos/{a}|{bb}", "source": "method",
                                "label": f"mean |cos(Z_{a}, Z_{bb})| (test)",
                                "metrics": {"score": float(np.abs((cn[a] * cn[bb]).sum(1)).mean())}})
    return out
