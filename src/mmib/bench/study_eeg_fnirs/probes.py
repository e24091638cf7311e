"""The EEG + fNIRS study's shared parts: the probed latents (:data:`TARGETS`), the probe family (``linear_probe``:
standardized features, logistic regression or ridge with the regularization chosen on val), the run's split and
latents, and the method's components and encoder outputs on every split."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

#: latent -> (task, probed on task trials only)
TARGETS: dict[str, tuple[str, bool]] = {
    "e": ("classification", False), "k": ("classification", False), "A": ("classification", True),
    "G": ("classification", True), "tau": ("regression", True), "efficiency": ("regression", True),
    "synergy": ("classification", True), "t0": ("regression", True),
}
#: the components of an R/U/S model (``rus``)
RUS_COMPONENTS = ("R_eeg", "R_fnirs", "U_eeg", "U_fnirs", "S")


# ---------------------------------------------------------------------------------------------------- probes
def probe_score(y: np.ndarray, pred: np.ndarray, task: str) -> float:
    from sklearn.metrics import balanced_accuracy_score, r2_score

    if task == "classification":
        return float(balanced_accuracy_score(y, pred))
    return float(r2_score(y, pred))


@dataclass
class ProbeFit:
    val: float
    test: float
    reg: float
    #: decision scores (classification, binary: the positive class's) or predictions on train / val / test
    out: dict[str, np.ndarray]
    pred: dict[str, np.ndarray]


def linear_probe(x: Mapping[str, np.ndarray], y: Mapping[str, np.ndarray], task: str,
                  grid: Sequence[float] = (0.01, 0.1, 1.0, 10.0, 100.0), clip: float = 5.0) -> ProbeFit:
    """Logistic regression (classification) or ridge (regression) on features standardized with train statistics
    (clipped at ± ``clip`` standard deviations), fitted on ``x["train"]``; the inverse regularization strength C (ridge: alpha = 1 / C) with the best val score
    (balanced accuracy / R²) is kept and scored on test."""
    from sklearn.linear_model import LogisticRegression, Ridge

    mu, sd = x["train"].mean(0), x["train"].std(0)
    sd[sd < 1e-12] = 1.0
    # standardized with train statistics and clipped at ±clip: one artefact-laden trial or subject (a motion spike in
    # an amplitude, a failed latency fit) cannot dominate a linear prediction on held-out subjects
    z = {s: np.clip((np.asarray(v, np.float64) - mu) / sd, -clip, clip) for s, v in x.items()}
    best: ProbeFit | None = None
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
        f = ProbeFit(probe_score(y["val"], pred["val"], task), probe_score(y["test"], pred["test"], task), c, out, pred)
        if best is None or f.val > best.val + 1e-12:
            best = f
    assert best is not None
    return best


def chance_level(task: str, y_train: np.ndarray) -> float:
    return 1.0 / max(2, len(np.unique(y_train))) if task == "classification" else 0.0


# ---------------------------------------------------------------------------------------------------- data
def split_indices_of(ctx) -> dict[str, np.ndarray]:
    idx = ctx.dm.indices
    for s in ("train", "val", "test"):
        if len(idx[s]) == 0:
            from mmib.errors import MMIBError

            raise MMIBError(f"eeg_fnirs protocols: the {s} split is empty (they need train, val and test subjects)")
    return {s: np.asarray(idx[s]) for s in ("train", "val", "test")}


def latents_of(ctx) -> dict[str, np.ndarray]:
    from mmib.errors import MMIBError

    lat = ctx.dm.dataset.latents or {}
    missing = [k for k in TARGETS if k not in lat]
    if missing:
        raise MMIBError(f"eeg_fnirs protocols: data set '{ctx.spec.name}' lacks the latents {missing} "
                        f"(expected those of eeg_fnirs_sim: {', '.join(TARGETS)})")
    return {k: np.asarray(v.numpy() if hasattr(v, "numpy") else v) for k, v in lat.items()}


def rows_for(lat: Mapping[str, np.ndarray], target: str, idx: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The sample indices of each split on which ``target`` is probed (task trials for the task-trial latents)."""
    if not TARGETS[target][1]:
        return dict(idx)
    return {s: i[lat["e"][i] == 1] for s, i in idx.items()}


def target_values(lat: Mapping[str, np.ndarray], target: str, rows: np.ndarray) -> np.ndarray:
    v = lat[target][rows]
    return v.astype(np.int64) if TARGETS[target][0] == "classification" else v.astype(np.float64)


def sorted_indices(idx: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {s: np.sort(i) for s, i in idx.items()}


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


def method_arrays(ctx, idx: Mapping[str, np.ndarray], want_hidden: bool) -> tuple[dict, dict]:
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

