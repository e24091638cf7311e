"""The EEG + fNIRS study's analyses as evaluation protocols (suite ``eeg-fnirs``; issue 20, spec parts C and D.5).

Registered on import (the suite lists this module under ``imports:``):

* ``eeg_fnirs_ceiling`` — the **hand-made-feature ceiling**: for every ground-truth latent, the best simple features
  (:mod:`mmib.data.physio.features`: time-resolved EEG band envelopes, gamma-burst peak, ERP latencies; fitted fNIRS
  onsets, channel-weighted time to peak, amplitudes; for ``synergy`` = (G + A) mod 2 also the product of the G and A
  decoders' scores and the XOR of their decisions), on the run's own split (held-out subjects): a linear / logistic
  probe per candidate feature set fitted on train, its regularization and the candidate chosen on val, scored on
  test. Rows ``ceiling/<latent>`` (all features), ``ceiling-eeg/<latent>``, ``ceiling-fnirs/<latent>`` (one
  modality's features) and ``candidate/<set>/<latent>`` (every candidate). It reads the data, not the method: every
  method's column shows the same numbers on the same split.
* ``eeg_fnirs_checks`` — the **validation of an R/U/S model** (methods with components ``R_eeg, R_fnirs, U_eeg,
  U_fnirs, S``; others are skipped with a note): every off-target "does not decode" check (Z_R_eeg → k, G;
  Z_R_fnirs → A; Z_U_eeg → e, A; Z_U_fnirs → e, k; Z_S → e, k, A, G) beside its **positive controls** — the same
  factor probed from that modality's encoder output ``H`` (``method.hidden(batch)``, when the method has it) and from
  its hand-made features; a check whose factor is decodable from neither (control below chance + 20 points, R² 0.2)
  is marked uninformative. ``pass``: within 10 points of chance (R² ≤ 0.1).
* ``eeg_fnirs_done`` — issue 20's Done-when comparisons (value, threshold, pass): Z_S → synergy ≥ 80 %, ≥ ceiling −
  7 points, ≥ a linear probe on [Z_R_eeg, Z_R_fnirs, Z_U_eeg, Z_U_fnirs] + 10 points; Z_S → τ R² ≥ 0.8 × ceiling;
  Z_R_m → e within 5 points of its modality's ceiling; every informative off-target pair within tolerance.
* ``eeg_fnirs_analyses`` — what the former ``benchmarks/eeg_fnirs_study.py`` computed besides the probe matrix: MLP
  probes (4 layers) of the synergy-type targets, and for R/U/S models the Spearman ρ of each component's norm with
  A (‖Z_U_fnirs‖ should follow A), cross-modal retrieval with the R heads and the mean |cos| between components.

Every probe here uses the same split and the same probe family (``_linear_probe``: standardized features, logistic
regression or ridge from scikit-learn with the regularization chosen on val) for components, encoder outputs and
hand-made features, so a component's number stands beside what the data allow. Latents other than ``e`` and ``k``
are expressed on task trials only and are probed there (``e = 1``, every split).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mmib.bench.extensions import register_protocol

#: latent -> (task, probed on task trials only)
TARGETS: dict[str, tuple[str, bool]] = {
    "e": ("classification", False), "k": ("classification", False), "A": ("classification", True),
    "G": ("classification", True), "tau": ("regression", True), "efficiency": ("regression", True),
    "synergy": ("classification", True), "t0": ("regression", True),
}

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
RUS_COMPONENTS = ("R_eeg", "R_fnirs", "U_eeg", "U_fnirs", "S")
#: off-target pairs of the issue (component -> latents it must not decode) and whose modality the control uses
OFF_TARGET: dict[str, tuple[tuple[str, ...], str]] = {
    "R_eeg": (("k", "G"), "eeg"), "R_fnirs": (("A",), "fnirs"), "U_eeg": (("e", "A"), "eeg"),
    "U_fnirs": (("e", "k"), "fnirs"), "S": (("e", "k", "A", "G"), "both"),
}


# ---------------------------------------------------------------------------------------------------- probes
def _score(y: np.ndarray, pred: np.ndarray, task: str) -> float:
    from sklearn.metrics import balanced_accuracy_score, r2_score

    if task == "classification":
        return float(balanced_accuracy_score(y, pred))
    return float(r2_score(y, pred))


@dataclass
class _Fit:
    val: float
    test: float
    reg: float
    #: decision scores (classification, binary: the positive class's) or predictions on train / val / test
    out: dict[str, np.ndarray]
    pred: dict[str, np.ndarray]


def _linear_probe(x: Mapping[str, np.ndarray], y: Mapping[str, np.ndarray], task: str,
                  grid: Sequence[float] = (0.01, 0.1, 1.0, 10.0, 100.0), clip: float = 5.0) -> _Fit:
    """Logistic regression (classification) or ridge (regression) on features standardized with train statistics
    (clipped at ± ``clip`` standard deviations), fitted on ``x["train"]``; the inverse regularization strength C (ridge: alpha = 1 / C) with the best val score
    (balanced accuracy / R²) is kept and scored on test."""
    from sklearn.linear_model import LogisticRegression, Ridge

    mu, sd = x["train"].mean(0), x["train"].std(0)
    sd[sd < 1e-12] = 1.0
    # standardized with train statistics and clipped at ±clip: one artefact-laden trial or subject (a motion spike in
    # an amplitude, a failed latency fit) cannot dominate a linear prediction on held-out subjects
    z = {s: np.clip((np.asarray(v, np.float64) - mu) / sd, -clip, clip) for s, v in x.items()}
    best: _Fit | None = None
    for c in grid:
        if task == "classification":
            if len(np.unique(y["train"])) < 2:
                m = None
            else:
                m = LogisticRegression(C=c, max_iter=5000).fit(z["train"], y["train"])
        else:
            m = Ridge(alpha=1.0 / c).fit(z["train"], y["train"])
        pred, out = {}, {}
        for s in z:
            if m is None:
                pred[s] = np.full(len(z[s]), y["train"][0])
                out[s] = np.zeros(len(z[s]))
            elif task == "classification":
                pred[s] = m.predict(z[s])
                d = m.decision_function(z[s])
                out[s] = d if d.ndim == 1 else d
            else:
                pred[s] = out[s] = m.predict(z[s])
        f = _Fit(_score(y["val"], pred["val"], task), _score(y["test"], pred["test"], task), c, out, pred)
        if best is None or f.val > best.val + 1e-12:
            best = f
    assert best is not None
    return best


def _chance(task: str, y_train: np.ndarray) -> float:
    return 1.0 / max(2, len(np.unique(y_train))) if task == "classification" else 0.0


# ---------------------------------------------------------------------------------------------------- data
def _splits(ctx) -> dict[str, np.ndarray]:
    idx = ctx.dm.indices
    for s in ("train", "val", "test"):
        if len(idx[s]) == 0:
            from mmib.errors import MMIBError

            raise MMIBError(f"eeg_fnirs protocols: the {s} split is empty (they need train, val and test subjects)")
    return {s: np.asarray(idx[s]) for s in ("train", "val", "test")}


def _latents(ctx) -> dict[str, np.ndarray]:
    from mmib.errors import MMIBError

    lat = ctx.dm.dataset.latents or {}
    missing = [k for k in TARGETS if k not in lat]
    if missing:
        raise MMIBError(f"eeg_fnirs protocols: data set '{ctx.spec.name}' lacks the latents {missing} "
                        f"(expected those of eeg_fnirs_sim: {', '.join(TARGETS)})")
    return {k: np.asarray(v.numpy() if hasattr(v, "numpy") else v) for k, v in lat.items()}


def _rows_for(lat: Mapping[str, np.ndarray], target: str, idx: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The sample indices of each split on which ``target`` is probed (task trials for the task-trial latents)."""
    if not TARGETS[target][1]:
        return dict(idx)
    return {s: i[lat["e"][i] == 1] for s, i in idx.items()}


def _target(lat: Mapping[str, np.ndarray], target: str, rows: np.ndarray) -> np.ndarray:
    v = lat[target][rows]
    return v.astype(np.int64) if TARGETS[target][0] == "classification" else v.astype(np.float64)


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
    key = ("eeg_fnirs_ceiling", id(ctx.dm.dataset), eeg_tmin, fnirs_tmin, tuple(map(len, _splits(ctx).values())))
    if key in ctx._cache:
        return ctx._cache[key]
    feats = feature_groups(ctx, eeg_tmin, fnirs_tmin)
    lat = _latents(ctx)
    idx = _splits(ctx)
    res: dict[str, Any] = {"candidates": {}, "best": {}, "chance": {}, "n_test": {}, "fits": {}}
    for target, scopes in CANDIDATES.items():
        task = TARGETS[target][0]
        rows = _rows_for(lat, target, idx)
        y = {s: _target(lat, target, r) for s, r in rows.items()}
        res["chance"][target] = _chance(task, y["train"])
        res["n_test"][target] = int(len(rows["test"]))
        for scope, cands in scopes.items():
            for groups in cands:
                f = _linear_probe({s: np.concatenate([feats[g][r] for g in groups], 1) for s, r in rows.items()},
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
            res["candidates"][(target, "both", "product of G and A decoders")] = _linear_probe(prod, y, task)
            pred = {s: (dec["G"].pred[s] + dec["A"].pred[s]) % 2 for s in rows}
            res["candidates"][(target, "both", "XOR of G and A decoders")] = _Fit(
                _score(y["val"], pred["val"], task), _score(y["test"], pred["test"], task), float("nan"), {}, pred)
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


# ---------------------------------------------------------------------------------------------------- checks
@dataclass
class ChecksOptions:
    """``eeg_fnirs_checks`` options: thresholds of the issue's Done-when (fractions / R²) and of the positive
    control (a check is informative when its control reaches ``control_margin`` above chance, R² ≥
    ``control_r2``)."""

    eeg_tmin: float = -0.5
    fnirs_tmin: float = -2.0
    off_target_tolerance: float = 0.10
    off_target_r2: float = 0.10
    control_margin: float = 0.20
    control_r2: float = 0.20
    synergy_min: float = 0.80
    synergy_below_ceiling: float = 0.07
    synergy_above_ru: float = 0.10
    tau_fraction: float = 0.8
    redundancy_below_ceiling: float = 0.05


def _pool(t) -> np.ndarray:
    """(N, d) from an encoder output: (N, d) as is; token sequences (N, T, d) → mean and max over T."""
    import torch

    if isinstance(t, (tuple, list)):
        t = t[0]
    if isinstance(t, Mapping):
        t = next(iter(t.values()))
    t = t.detach().float().cpu()
    if t.dim() == 2:
        return t.numpy()
    if t.dim() == 3:
        return torch.cat([t.mean(1), t.amax(1)], 1).numpy()
    return t.reshape(t.shape[0], -1).numpy()


def _method_arrays(ctx, idx: Mapping[str, np.ndarray], want_hidden: bool) -> tuple[dict, dict]:
    """Components and (when the method has ``hidden``) per-modality encoder outputs of every split's samples."""
    import torch

    from mmib.data.dataset import batch_to_device

    method = ctx.method
    method.eval()
    hidden = getattr(method, "hidden", None) if want_hidden else None
    comps: dict[str, dict[str, np.ndarray]] = {}
    hid: dict[str, dict[str, np.ndarray]] = {}
    for s, ii in idx.items():
        cparts: dict[str, list] = {}
        hparts: dict[str, list] = {}
        for start in range(0, len(ii), 256):
            b = batch_to_device(ctx.dm.dataset.get_batch(ii[start:start + 256]), method.device)
            with torch.no_grad():
                for k, v in method.components(b, ctx.modalities).items():
                    cparts.setdefault(k, []).append(v.detach().float().cpu().numpy())
                if hidden is not None:
                    for m, v in hidden(b).items():
                        hparts.setdefault(m, []).append(_pool(v))
        comps[s] = {k: np.concatenate(v) for k, v in cparts.items()}
        hid[s] = {k: np.concatenate(v) for k, v in hparts.items()}
    return comps, hid


def _probe_rep(arr: Mapping[str, Mapping[str, np.ndarray]], names: Sequence[str], idx: Mapping[str, np.ndarray],
               rows: Mapping[str, np.ndarray], y: Mapping[str, np.ndarray], task: str) -> _Fit:
    """Probe the concatenation of ``names`` (arrays aligned with ``idx``) on the rows ``rows`` of each split."""
    x = {}
    for s in idx:
        pos = np.searchsorted(idx[s], rows[s])  # idx sorted (_sorted_idx), rows a subset of it
        x[s] = np.concatenate([arr[s][n][pos] for n in names], 1)
    return _linear_probe(x, y, task)


def _sorted_idx(idx: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {s: np.sort(i) for s, i in idx.items()}


def _checks(ctx, opt: ChecksOptions) -> dict[str, Any]:
    """The off-target rows and the Done-when rows (computed once per evaluation and options)."""
    key = ("eeg_fnirs_checks", id(ctx.dm.dataset), tuple(sorted(asdict(opt).items())))
    if key not in ctx._cache:
        ctx._cache[key] = _compute_checks(ctx, opt)
    return ctx._cache[key]


def _compute_checks(ctx, opt: ChecksOptions) -> dict[str, Any]:
    out: dict[str, Any] = {"notes": [], "rows": []}
    ceil = compute_ceiling(ctx, opt.eeg_tmin, opt.fnirs_tmin)
    lat = _latents(ctx)
    idx = _sorted_idx(_splits(ctx))
    has_hidden = callable(getattr(ctx.method, "hidden", None))
    comps, hid = _method_arrays(ctx, idx, has_hidden)
    if not has_hidden:
        out["notes"].append(f"method '{ctx.method.name}' has no hidden(batch): positive controls from the hand-made "
                            "features only")
    cache: dict[tuple, _Fit] = {}

    def fit(kind: str, source: dict, names: Sequence[str], target: str) -> _Fit:
        """A probe of ``target`` on ``source``'s ``names`` (components or encoder outputs), fitted once."""
        k = (kind, tuple(names), target)
        if k not in cache:
            rows = _rows_for(lat, target, idx)
            y = {s: _target(lat, target, r) for s, r in rows.items()}
            cache[k] = _probe_rep(source, names, idx, rows, y, TARGETS[target][0])
        return cache[k]

    def comp_fit(names: Sequence[str], target: str) -> _Fit:
        return fit("c", comps, names, target)

    def hidden_fit(mods: Sequence[str], target: str) -> _Fit | None:
        if not has_hidden or not all(m in hid["train"] for m in mods):
            return None
        return fit("h", hid, mods, target)

    def above(score: float, target: str) -> float:
        return score - ceil["chance"][target]

    # ---- off-target checks with their positive controls
    for comp, (targets, scope) in OFF_TARGET.items():
        for target in targets:
            task = TARGETS[target][0]
            f = comp_fit([comp], target)
            mods = ("eeg", "fnirs") if scope == "both" else (scope,)
            hs = [h.test for h in ([hidden_fit([m], target) for m in mods]
                                   + ([hidden_fit(list(mods), target)] if len(mods) > 1 else [])) if h is not None]
            control_h = max(hs) if hs else float("nan")
            raw_scope = "all" if scope == "both" else scope
            control_raw = ceil["best"][(target, raw_scope)][2].test
            control = np.nanmax([control_h, control_raw])
            if task == "classification":
                informative = above(control, target) >= opt.control_margin
                ok = abs(above(f.test, target)) <= opt.off_target_tolerance
            else:
                informative = control >= opt.control_r2
                ok = f.test <= opt.off_target_r2
            out["rows"].append({
                "id": f"off-target/{comp}->{target}", "source": "method", "component": comp, "latent": target,
                "label": f"Z_{comp} → {target} does not decode (control: {scope} H / hand-made features)",
                "metrics": {"score": f.test, "control_hidden": control_h, "control_features": control_raw,
                            "informative": float(informative), "pass": float(ok)},
                "chance": {"score": ceil["chance"][target]}})
    # ---- Done-when comparisons
    syn, tau = comp_fit(["S"], "synergy"), comp_fit(["S"], "tau")
    ru = comp_fit(["R_eeg", "R_fnirs", "U_eeg", "U_fnirs"], "synergy")
    c_syn, c_tau = ceil["best"][("synergy", "all")][2].test, ceil["best"][("tau", "all")][2].test
    done = [
        ("done/S->synergy>=0.80", "Z_S → (G + A) mod 2 ≥ 80 % (task trials)", syn.test, opt.synergy_min),
        ("done/S->synergy>=ceiling-7", "Z_S → (G + A) mod 2 ≥ ceiling − 7 points", syn.test,
         c_syn - opt.synergy_below_ceiling),
        ("done/S->synergy>=RU+10", "Z_S → (G + A) mod 2 ≥ linear probe on [Z_R, Z_U] + 10 points", syn.test,
         ru.test + opt.synergy_above_ru),
        ("done/S->tau>=0.8*ceiling", "Z_S → τ R² ≥ 0.8 × ceiling", tau.test, opt.tau_fraction * c_tau),
    ]
    for m in ("eeg", "fnirs"):
        f = comp_fit([f"R_{m}"], "e")
        done.append((f"done/R_{m}->e>=ceiling_{m}-5", f"Z_R_{m} → e within 5 points of the {m} ceiling", f.test,
                     ceil["best"][("e", m)][2].test - opt.redundancy_below_ceiling))
    for rid, label, value, thr in done:
        out["rows"].append({"id": rid, "source": "method", "label": label,
                            "metrics": {"score": value, "threshold": thr, "pass": float(value >= thr)}})
    informative = [r for r in out["rows"] if r["id"].startswith("off-target/") and r["metrics"]["informative"]]
    out["rows"].append({"id": "done/off-target (informative pairs)", "source": "method",
                        "label": "every informative off-target pair within tolerance",
                        "metrics": {"score": float(np.mean([r["metrics"]["pass"] for r in informative]))
                                    if informative else float("nan"),
                                    "threshold": 1.0,
                                    "pass": float(all(r["metrics"]["pass"] for r in informative))}})
    out["notes"].append(f"RU = linear probe on [Z_R_eeg, Z_R_fnirs, Z_U_eeg, Z_U_fnirs] → synergy: {ru.test:.3f}; "
                        f"ceilings: synergy {c_syn:.3f}, tau {c_tau:.3f}, e (eeg) "
                        f"{ceil['best'][('e', 'eeg')][2].test:.3f}, e (fnirs) {ceil['best'][('e', 'fnirs')][2].test:.3f}")
    return out


def _checks_result(ctx, options, name: str, prefix: tuple[str, ...], primary: str) -> dict[str, Any]:
    from mmib.eval.protocols import parse_options

    opt = parse_options(ChecksOptions, options, name)
    out = {"protocol": name, "options": asdict(opt), "plots": {}, "primary_metric": primary, "notes": [],
           "rows": []}
    if not ctx.capable("components") or not set(RUS_COMPONENTS) <= set(ctx.component_names()):
        out["notes"].append(f"skipped: method '{ctx.method.name}' has no components {', '.join(RUS_COMPONENTS)}")
        return out
    got = _checks(ctx, opt)
    out["notes"] = list(got["notes"])
    out["rows"] = [r for r in got["rows"] if r["id"].startswith(prefix)]
    return out


@register_protocol("eeg_fnirs_checks", replace=True)
def eeg_fnirs_checks(ctx, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Off-target "does not decode" checks, each with its positive controls and whether it is informative."""
    return _checks_result(ctx, options, "eeg_fnirs_checks", ("off-target/",), "pass")


@register_protocol("eeg_fnirs_done", replace=True)
def eeg_fnirs_done(ctx, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Issue 20's Done-when comparisons: value, threshold, pass (the mean of pass over seeds = share of seeds)."""
    return _checks_result(ctx, options, "eeg_fnirs_done", ("done/",), "pass")


# ---------------------------------------------------------------------------------------------------- analyses
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
    lat = _latents(ctx)
    idx = _sorted_idx(_splits(ctx))
    is_rus = ctx.capable("components") and set(RUS_COMPONENTS) <= set(ctx.component_names())
    if is_rus:
        comps, _ = _method_arrays(ctx, idx, False)
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
            rows = _rows_for(lat, target, idx)
            y = {s: _target(lat, target, r) for s, r in rows.items()}
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
                                    "chance": {"score": _chance(task, y["train"])}})
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
