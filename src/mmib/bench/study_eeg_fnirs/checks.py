"""``eeg_fnirs_checks`` (off-target "does not decode" checks with their positive controls) and ``eeg_fnirs_done``
(issue 20's Done-when comparisons) of an R/U/S model (see :mod:`mmib.bench.study_eeg_fnirs`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from mmib.bench.extensions import register_protocol
from mmib.bench.study_eeg_fnirs.ceiling import compute_ceiling
from mmib.bench.study_eeg_fnirs.probes import (
    RUS_COMPONENTS,
    TARGETS,
    ProbeFit,
    latents_of,
    linear_probe,
    method_arrays,
    rows_for,
    sorted_indices,
    split_indices_of,
    target_values,
)

#: off-target pairs of the issue (component -> latents it must not decode) and whose modality the control uses
OFF_TARGET: dict[str, tuple[tuple[str, ...], str]] = {
    "R_eeg": (("k", "G"), "eeg"), "R_fnirs": (("A",), "fnirs"), "U_eeg": (("e", "A"), "eeg"),
    "U_fnirs": (("e", "k"), "fnirs"), "S": (("e", "k", "A", "G"), "both"),
}


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


def _probe_rep(arr: Mapping[str, Mapping[str, np.ndarray]], names: Sequence[str], idx: Mapping[str, np.ndarray],
               rows: Mapping[str, np.ndarray], y: Mapping[str, np.ndarray], task: str) -> ProbeFit:
    """Probe the concatenation of ``names`` (arrays aligned with ``idx``) on the rows ``rows`` of each split."""
    x = {}
    for s in idx:
        pos = np.searchsorted(idx[s], rows[s])  # idx sorted (sorted_indices), rows a subset of it
        x[s] = np.concatenate([arr[s][n][pos] for n in names], 1)
    return linear_probe(x, y, task)


def _checks(ctx, opt: ChecksOptions) -> dict[str, Any]:
    """The off-target rows and the Done-when rows (computed once per evaluation and options)."""
    key = ("eeg_fnirs_checks", id(ctx.dm.dataset), tuple(sorted(asdict(opt).items())))
    if key not in ctx._cache:
        ctx._cache[key] = _compute_checks(ctx, opt)
    return ctx._cache[key]


def _compute_checks(ctx, opt: ChecksOptions) -> dict[str, Any]:
    out: dict[str, Any] = {"notes": [], "rows": []}
    ceil = compute_ceiling(ctx, opt.eeg_tmin, opt.fnirs_tmin)
    lat = latents_of(ctx)
    idx = sorted_indices(split_indices_of(ctx))
    has_hidden = callable(getattr(ctx.method, "hidden", None))
    comps, hid = method_arrays(ctx, idx, has_hidden)
    if not has_hidden:
        out["notes"].append(f"method '{ctx.method.name}' has no hidden(batch): positive controls from the hand-made "
                            "features only")
    cache: dict[tuple, ProbeFit] = {}

    def fit(kind: str, source: dict, names: Sequence[str], target: str) -> ProbeFit:
        """A probe of ``target`` on ``source``'s ``names`` (components or encoder outputs), fitted once."""
        k = (kind, tuple(names), target)
        if k not in cache:
            rows = rows_for(lat, target, idx)
            y = {s: target_values(lat, target, r) for s, r in rows.items()}
            cache[k] = _probe_rep(source, names, idx, rows, y, TARGETS[target][0])
        return cache[k]

    def comp_fit(names: Sequence[str], target: str) -> ProbeFit:
        return fit("c", comps, names, target)

    def hidden_fit(mods: Sequence[str], target: str) -> ProbeFit | None:
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

