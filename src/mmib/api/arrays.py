"""The arrays a user hands :class:`~mmib.api.MultimodalModel`: converted and checked at the boundary (numeric,
finite, float32-representable, one row per sample; labels as class indices), and a :class:`DatasetSpec` inferred from
them (:func:`infer_spec`). Every bad input is a one-line error naming the modality and what was expected."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from mmib.data.dataset import DataValidationError
from mmib.data.spec import DatasetSpec, ModalitySpec


def as_numeric(name: str, a: Any, where: str = "") -> np.ndarray:
    """``X[name]`` as a real numeric numpy array (N, ...), or a :class:`DataValidationError` naming the modality."""
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    try:
        arr = np.asarray(a)
    except Exception as e:  # ragged nested lists, exotic objects
        msg = " ".join(str(e).split())[:160]
        raise DataValidationError(f"{where}modality '{name}': cannot convert {type(a).__name__} to an array ({msg})") from None
    if arr.dtype.kind not in "fiu":
        what = {"U": "strings", "S": "bytes", "O": "Python objects", "b": "booleans", "c": "complex numbers"}
        raise DataValidationError(f"{where}modality '{name}': expected a real numeric array (float or int), got "
                                  f"{what.get(arr.dtype.kind, 'dtype')} (dtype {arr.dtype})")
    if arr.ndim < 2:
        raise DataValidationError(f"{where}modality '{name}': expected an array (N, ...) with a feature axis, got "
                                  f"shape {arr.shape}")
    return arr


def as_labels(y: Any, where: str = "") -> np.ndarray:
    """``y`` as a numpy array: numbers stay numbers, class names (str / bytes, also in object arrays) become str."""
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    try:
        a = np.asarray(y)
    except Exception as e:
        msg = " ".join(str(e).split())[:160]
        raise DataValidationError(f"{where}labels y: cannot convert {type(y).__name__} to an array ({msg})") from None
    if a.ndim == 0 or a.size == 0:
        raise DataValidationError(f"{where}labels y: expected one label per sample, got shape {a.shape}")
    if a.dtype.kind == "S":
        a = np.char.decode(a, "utf-8", errors="replace")
    elif a.dtype.kind == "O":
        flat = a.reshape(-1)
        if all(isinstance(v, (str, bytes)) for v in flat):
            a = np.asarray([v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in flat]).reshape(a.shape)
        else:
            try:
                a = a.astype(np.float64)
            except (TypeError, ValueError):
                kinds = sorted({type(v).__name__ for v in flat})
                raise DataValidationError(f"{where}labels y: expected class indices, numeric targets or class names "
                                          f"(strings), got an object array of {', '.join(kinds)}") from None
    if a.dtype.kind not in "fiubU":
        raise DataValidationError(f"{where}labels y: expected class indices, numeric targets or class names, got "
                                  f"dtype {a.dtype}")
    if a.dtype.kind == "U" and a.ndim > 1 and int(np.prod(a.shape[1:])) != 1:
        raise DataValidationError(f"{where}labels y: class names must be one per sample (N,), got shape {a.shape}")
    return a.reshape(-1) if a.dtype.kind == "U" else a


def encode_names(y: np.ndarray, classes: np.ndarray, where: str) -> np.ndarray:
    """Class names → indices into ``classes`` (the sorted names seen at fit); unknown names are an error."""
    idx = np.searchsorted(classes, y)
    idx = np.minimum(idx, len(classes) - 1)
    unknown = sorted(set(y[classes[idx] != y].tolist()))
    if unknown:
        raise DataValidationError(f"{where}labels y: unknown class {', '.join(map(repr, unknown[:5]))}; the model was "
                                  f"fit with classes {', '.join(map(repr, classes.tolist()))}")
    return idx.astype(np.int64)


def warn_single_class(y: np.ndarray, where: str) -> None:
    """Warn when a classification test set holds one class: accuracy then only counts one prediction."""
    import warnings

    from mmib.data.dataset import DataWarning

    if len(y) > 1 and len(np.unique(y)) == 1:
        warnings.warn(f"{where}: the test labels are all class {y[0]} ({len(y)} samples): accuracy only counts how "
                      "often the probe predicts that class, and balanced accuracy / macro-F1 are not meaningful; "
                      "test on samples of several classes", DataWarning, stacklevel=3)


def checked_arrays(spec: DatasetSpec, X: Mapping[str, Any], where: str = "") -> dict[str, np.ndarray]:
    """The arrays of ``X`` for a fitted model's ``spec``, validated: known modalities, real numeric dtype,
    per-sample shape, at least one row, equal row counts, finite values within the float32 range (each error names
    the modality; row numbers count from the start of ``X``)."""
    from mmib.data.arrays import FLOAT32_MAX, find_float32_overflow, find_nonfinite

    if not isinstance(X, Mapping):
        raise DataValidationError(f"{where}X must be a dict {{modality name: array (N, ...)}}, got {type(X).__name__}")
    mods = spec.check_modalities([str(k) for k in X])
    out = {}
    for m in mods:
        ms = spec.modality(m)
        a = as_numeric(m, X[m], where)
        if tuple(a.shape[1:]) != tuple(ms.shape):
            raise DataValidationError(f"{where}modality '{m}': expected per-sample shape {ms.shape}, got "
                                      f"{tuple(a.shape[1:])}")
        if len(a) == 0:
            raise DataValidationError(f"{where}modality '{m}': 0 rows; give at least one sample")
        if a.dtype.kind == "f":
            bad = find_nonfinite(a)
            if bad is not None:
                raise DataValidationError(f"{where}modality '{m}': NaN or inf in row {bad}")
            over = find_float32_overflow(a)
            if over is not None:
                raise DataValidationError(f"{where}modality '{m}': values exceed the float32 range (|value| "
                                          f"{over[1]:.3g} in row {over[0]}; float32 holds up to {FLOAT32_MAX:.3g}); "
                                          "rescale the data")
        out[m] = a
    rows = {m: len(a) for m, a in out.items()}
    if len(set(rows.values())) > 1:
        raise DataValidationError(f"{where}modalities have different numbers of rows "
                                  f"({', '.join(f'{m!r}: {r}' for m, r in rows.items())})")
    return out


def eval_labels(spec: DatasetSpec, classes: np.ndarray | None, y: Any, n_rows: int, where: str) -> np.ndarray:
    """Test labels for a model fit on ``spec``: class names mapped with the fit's ``classes``, indices checked
    against its number of classes, regression targets checked finite; each error names ``labels y``."""
    ya = as_labels(y, where)
    if len(ya) != n_rows:
        raise DataValidationError(f"{where}labels y: expected {n_rows} entries (one per row of X), got {len(ya)}")
    if spec.task == "classification":
        if ya.dtype.kind == "U":
            if classes is None:
                raise DataValidationError(f"{where}labels y: class names given, but the model was fit with class "
                                          f"indices 0..{spec.n_classes - 1}; give y as indices")
            return encode_names(ya, classes, where)
        if classes is not None:
            raise DataValidationError(f"{where}labels y: the model was fit with class names "
                                      f"({', '.join(map(repr, classes.tolist()))}); give y as class names too")
        if ya.ndim > 1 and int(np.prod(ya.shape[1:])) != 1:
            raise DataValidationError(f"{where}labels y: expected one class index per sample, got shape {ya.shape}")
        ya = ya.reshape(-1)
        if ya.dtype.kind == "f" and not (np.all(np.isfinite(ya)) and np.all(ya == np.round(ya))):
            raise DataValidationError(f"{where}labels y: expected integer class indices, got non-integer floats")
        ya = ya.astype(np.int64)
        lo, hi = int(ya.min()), int(ya.max())
        if lo < 0 or hi >= spec.n_classes:
            raise DataValidationError(f"{where}labels y: class indices must lie in [0, {spec.n_classes - 1}] (the "
                                      f"classes seen at fit), got range [{lo}, {hi}]")
        return ya
    if ya.dtype.kind == "U":
        raise DataValidationError(f"{where}labels y: the model was fit for regression; expected numeric targets, got "
                                  "class names (strings)")
    ya = ya.astype(np.float64)
    if not np.all(np.isfinite(ya)):
        raise DataValidationError(f"{where}labels y: NaN or inf in the targets")
    return ya


def infer_spec(x: Mapping[str, Any], y: Any = None, name: str = "arrays", kinds: Mapping[str, str] | None = None,
               task: str | None = None) -> DatasetSpec:
    """A :class:`DatasetSpec` for in-memory arrays: kinds from the per-sample rank (1 vector, 2 signal, 3 image)
    unless given; the task from ``y`` (integers or class names → classification, floats → regression, None →
    none)."""
    if not isinstance(x, Mapping) or not x:
        raise DataValidationError("X must be a non-empty dict {modality name: array (N, ...)}")
    kinds = dict(kinds or {})
    mods = []
    for k, a in x.items():
        if not isinstance(k, str):
            raise DataValidationError(f"X: modality names must be strings, got {k!r}")
        shape = as_numeric(k, a).shape
        mods.append(ModalitySpec.infer(k, shape[1:], kind=kinds.get(k)))
    n_classes = None
    ya = None if y is None else as_labels(y)
    if task is None:
        task = "none" if ya is None else ("classification" if ya.dtype.kind in "iubU" else "regression")
    if task == "classification":
        if ya is None:
            raise DataValidationError("labels y: a classification task needs y")
        if ya.dtype.kind == "U":
            n_classes = max(2, len(np.unique(ya)))
        else:
            finite = ya[np.isfinite(ya)] if ya.dtype.kind == "f" else ya
            n_classes = max(2, int(np.max(finite)) + 1 if finite.size else 2)
    target_dim = 1
    if task == "regression" and ya is not None:
        target_dim = 1 if ya.ndim == 1 else int(np.prod(ya.shape[1:]))
    return DatasetSpec(name=name, modalities=tuple(mods), task=task, n_classes=n_classes, target_dim=target_dim)
