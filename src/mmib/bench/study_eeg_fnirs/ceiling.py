"""``eeg_fnirs_ceiling``: the hand-made-feature ceiling of every latent on the run's own split (see
:mod:`mmib.bench.study_eeg_fnirs`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mmib.bench.extensions import register_protocol
from mmib.bench.study_eeg_fnirs.probes import (
    TARGETS,
    ProbeFit,
    chance_level,
    latents_of,
    linear_probe,
    probe_score,
    rows_for,
    split_indices_of,
    target_values,
)

#: candidate feature sets per latent and scope (names of :func:`eeg_fnirs_feature_groups` groups)
_EEG_EVENT = ("eeg_erp", "eeg_gamma_peak")
CANDIDATES: dict[str, dict[str, list[tuple[str, ...]]]] = {
    "e": {"eeg": [("eeg_erp",), _EEG_EVENT, (*_EEG_EVENT, "eeg_gamma_windows")],
          "fnirs": [("fnirs_amplitude",), ("fnirs_amplitude", "fnirs_windows")],
          "both": [(*_EEG_EVENT, "fnirs_amplitude"), (*_EEG_EVENT, "fnirs_amplitude", "fnirs_windows")]},
    "k": {"eeg": [("eeg_band_power",)], "fnirs": [("fnirs_amplitude", "fnirs_windows")],
          "both": [("eeg_band_power", "fnirs_amplitude")]},
    "A": {"eeg": [_EEG_EVENT, ("eeg_band_power",)], "fnirs": [("fnirs_amplitude",), ("fnirs_amplitude", "fnirs_windows")],
          "both": [("eeg_gamma_peak", "fnirs_amplitude")]},
    "G": {"eeg": [("eeg_gamma_peak",), ("eeg_gamma_windows",), ("eeg_gamma_peak", "eeg_gamma_windows"),
                  ("eeg_gamma_peak", "eeg_gain_reference")],
          "fnirs": [("fnirs_amplitude",), ("fnirs_amplitude", "fnirs_windows")],
          "both": [("eeg_gamma_peak", "fnirs_amplitude")]},
    "tau": {"eeg": [("eeg_latency",), _EEG_EVENT], "fnirs": [("fnirs_latency",), ("fnirs_latency", "fnirs_windows")],
            "both": [("eeg_latency", "fnirs_latency"), ("eeg_latency", "eeg_erp", "fnirs_latency")]},
    "t0": {"eeg": [("eeg_latency",), _EEG_EVENT], "fnirs": [("fnirs_latency",)],
           "both": [("eeg_latency", "fnirs_latency")]},
    "efficiency": {"eeg": [("eeg_gamma_peak",), ("eeg_gamma_peak", "eeg_gain_reference")],
                   "fnirs": [("fnirs_amplitude",)],
                   "both": [("eeg_gamma_peak", "fnirs_amplitude"),
                            ("eeg_gamma_peak", "eeg_gain_reference", "fnirs_amplitude")]},
    "synergy": {"eeg": [("eeg_gamma_peak",), ("eeg_gamma_peak", "eeg_gamma_windows")],
                "fnirs": [("fnirs_amplitude",)], "both": [("eeg_gamma_peak", "fnirs_amplitude")]},
}


@dataclass
class CeilingOptions:
    """``eeg_fnirs_ceiling`` options: the epochs' start times (s) and whether every candidate gets a row."""

    eeg_tmin: float = -0.5
    fnirs_tmin: float = -2.0
    candidates: bool = True


def feature_groups(ctx, eeg_tmin: float = -0.5, fnirs_tmin: float = -2.0) -> dict[str, np.ndarray]:
    """The hand-made feature groups of every epoch of the run's data set (raw, unstandardized signals), computed once
    per evaluation."""
    from mmib.data.physio.features import EEGFNIRSFeatureConfig, eeg_fnirs_feature_groups
    from mmib.errors import MMIBError

    key = ("eeg_fnirs_features", id(ctx.dm.dataset), eeg_tmin, fnirs_tmin)
    if key in ctx._cache:
        return ctx._cache[key]
    ds = ctx.dm.dataset
    spec = {m.name: m for m in ctx.spec.modalities}
    for m in ("eeg", "fnirs"):
        if m not in spec or spec[m].kind != "signal" or spec[m].rate is None or spec[m].channels is None:
            raise MMIBError(f"eeg_fnirs protocols: modality '{m}' must be a signal with a rate and channel names "
                            f"(data representation 'signal' of eeg_fnirs_sim); got {spec.get(m)}")

    def raw(m: str) -> np.ndarray:
        a = ds.x[m]
        return np.asarray(a.numpy() if hasattr(a, "numpy") else a, dtype=np.float64)

    cfg = EEGFNIRSFeatureConfig(eeg_tmin=eeg_tmin, fnirs_tmin=fnirs_tmin)
    out = eeg_fnirs_feature_groups(raw("eeg"), raw("fnirs"), spec["eeg"].channels, spec["fnirs"].channels,
                                   spec["eeg"].rate, spec["fnirs"].rate, cfg)
    ctx._cache[key] = out
    return out


def _name(groups: Sequence[str]) -> str:
    return "+".join(groups)


def compute_ceiling(ctx, eeg_tmin: float = -0.5, fnirs_tmin: float = -2.0) -> dict[str, Any]:
    """Every candidate's val/test score per latent and scope, the chosen one per scope and overall (cached)."""
    key = ("eeg_fnirs_ceiling", id(ctx.dm.dataset), eeg_tmin, fnirs_tmin, tuple(map(len, split_indices_of(ctx).values())))
    if key in ctx._cache:
        return ctx._cache[key]
    feats = feature_groups(ctx, eeg_tmin, fnirs_tmin)
    lat = latents_of(ctx)
    idx = split_indices_of(ctx)
    res: dict[str, Any] = {"candidates": {}, "best": {}, "chance": {}, "n_test": {}, "fits": {}}
    for target, scopes in CANDIDATES.items():
        task = TARGETS[target][0]
        rows = rows_for(lat, target, idx)
        y = {s: target_values(lat, target, r) for s, r in rows.items()}
        res["chance"][target] = chance_level(task, y["train"])
        res["n_test"][target] = int(len(rows["test"]))
        for scope, cands in scopes.items():
            for groups in cands:
                f = linear_probe({s: np.concatenate([feats[g][r] for g in groups], 1) for s, r in rows.items()},
                                  y, task)
                res["candidates"][(target, scope, _name(groups))] = f
        # the synergy target: the G decoder's and the A decoder's scores (each chosen on val), their product, and
        # the parity of their decisions ((G + A) mod 2 of the predicted levels)
        if target == "synergy":
            dec = {}
            for part, scope in (("G", "eeg"), ("A", "fnirs")):
                c = [(k, v) for k, v in res["candidates"].items() if k[0] == part and k[1] == scope]
                dec[part] = max(c, key=lambda kv: kv[1].val)[1]
            prod = {s: np.stack([dec["G"].out[s], dec["A"].out[s], dec["G"].out[s] * dec["A"].out[s]], 1)
                    for s in rows}
            res["candidates"][(target, "both", "product of G and A decoders")] = linear_probe(prod, y, task)
            pred = {s: (dec["G"].pred[s] + dec["A"].pred[s]) % 2 for s in rows}
            res["candidates"][(target, "both", "XOR of G and A decoders")] = ProbeFit(
                probe_score(y["val"], pred["val"], task), probe_score(y["test"], pred["test"], task), float("nan"), {}, pred)
        for scope in ("eeg", "fnirs", "both", "all"):
            c = [(k, v) for k, v in res["candidates"].items() if k[0] == target and (scope == "all" or k[1] == scope)]
            k, f = max(c, key=lambda kv: kv[1].val)
            res["best"][(target, scope)] = (k[1], k[2], f)
    ctx._cache[key] = res
    return res


@register_protocol("eeg_fnirs_ceiling", replace=True)
def eeg_fnirs_ceiling(ctx, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    from mmib.eval.protocols import parse_options

    opt = parse_options(CeilingOptions, options, "eeg_fnirs_ceiling")
    res = compute_ceiling(ctx, opt.eeg_tmin, opt.fnirs_tmin)
    rows: list[dict[str, Any]] = []
    notes = []
    for target in CANDIDATES:
        unit = "balanced accuracy" if TARGETS[target][0] == "classification" else "R²"
        for scope, rid in (("all", "ceiling"), ("eeg", "ceiling-eeg"), ("fnirs", "ceiling-fnirs")):
            sc, name, f = res["best"][(target, scope)]
            rows.append({"id": f"{rid}/{target}", "source": "raw", "latent": target, "scope": scope,
                         "features": f"{sc}: {name}", "label": f"{rid} → {target} ({unit})",
                         "metrics": {"score": f.test}, "val_score": f.val,
                         "chance": {"score": res["chance"][target]}, "n_test": res["n_test"][target]})
            if scope == "all":
                notes.append(f"{target}: chosen on val: {sc}: {name} (test {unit} {f.test:.3f}, val {f.val:.3f}, "
                             f"{res['n_test'][target]} test trials)")
        if opt.candidates:
            for (t, scope, name), f in res["candidates"].items():
                if t == target:
                    rows.append({"id": f"candidate/{scope}:{name}/{target}", "source": "raw", "latent": target,
                                 "label": f"{scope}: {name} → {target}", "metrics": {"score": f.test},
                                 "chance": {"score": res["chance"][target]}})
    notes.insert(0, "hand-made features (mmib.data.physio.features) of the run's split; linear/logistic probes fitted "
                    "on train, regularization and feature set chosen on val, scored on test; task-trial latents on "
                    "e = 1")
    return {"protocol": "eeg_fnirs_ceiling", "options": asdict(opt), "plots": {}, "primary_metric": "score",
            "notes": notes, "rows": rows}

