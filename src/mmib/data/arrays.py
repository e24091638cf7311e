"""Array checks at the data boundary: conversion of user input to an array, dtype kinds, and the first sample holding
NaN/inf or a float64 value beyond the float32 range (scanned in chunks, so memory-mapped arrays are never loaded
whole). Used by :class:`mmib.data.dataset.MultimodalDataset` and the Python API (:mod:`mmib.api`).

Example:
    >>> import numpy as np
    >>> find_nonfinite(np.array([[0.0, 1.0], [np.nan, 2.0]]))
    1
    >>> find_float32_overflow(np.array([[1.0], [1e300]]))
    (1, 1e+300)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mmib.data.spec import DataValidationError

_CHECK_CHUNK = 65536


def _as_array(name: str, what: str, a: Any) -> np.ndarray | torch.Tensor:
    if not isinstance(a, (torch.Tensor, np.ndarray)):
        try:
            a = np.asarray(a)
        except Exception as e:  # ragged nested lists, exotic objects
            msg = " ".join(str(e).split())[:160]
            raise DataValidationError(f"{what} '{name}': cannot convert {type(a).__name__} to an array ({msg})") from e
    if a.ndim == 0:
        raise DataValidationError(f"{what} '{name}': expected an array with one entry per sample, got a scalar")
    return a


def _dtype_kind(a: np.ndarray | torch.Tensor) -> str:
    """'f' float, 'i' integer, 'b' bool, 'c' complex, 'O'/'U'/'S' other — numpy's kind codes."""
    if isinstance(a, torch.Tensor):
        if a.dtype == torch.bool:
            return "b"
        if a.is_complex():
            return "c"
        if a.is_floating_point():
            return "f"
        return "i"
    return a.dtype.kind if a.dtype.kind != "u" else "i"


def find_nonfinite(a: np.ndarray | torch.Tensor, valid: np.ndarray | None = None) -> int | None:
    """Index (along axis 0) of the first sample with NaN/inf, ignoring samples where ``valid`` is False."""
    n = a.shape[0]
    for start in range(0, n, _CHECK_CHUNK):
        chunk = a[start : start + _CHECK_CHUNK]
        if isinstance(chunk, torch.Tensor):
            bad = ~torch.isfinite(chunk.reshape(chunk.shape[0], -1)).all(dim=1)
            bad = bad.numpy()
        else:
            bad = ~np.isfinite(np.asarray(chunk).reshape(chunk.shape[0], -1)).all(axis=1)
        if valid is not None:
            bad &= valid[start : start + _CHECK_CHUNK]
        if bad.any():
            return int(start + np.flatnonzero(bad)[0])
    return None


#: the largest finite float32: float64 values beyond it become inf when a batch is cast to float32
FLOAT32_MAX = float(np.finfo(np.float32).max)


def find_float32_overflow(a: np.ndarray | torch.Tensor, valid: np.ndarray | None = None) -> tuple[int, float] | None:
    """(sample index, |value|) of the first sample holding a finite value beyond the float32 range, or None.

    Only wider float dtypes (float64) can hold such values; ``valid`` False samples are ignored.
    """
    if isinstance(a, torch.Tensor):
        if a.dtype != torch.float64:
            return None
    elif np.dtype(a.dtype).kind != "f" or np.dtype(a.dtype).itemsize <= 4:
        return None
    n = a.shape[0]
    for start in range(0, n, _CHECK_CHUNK):
        chunk = a[start : start + _CHECK_CHUNK]
        c = chunk.numpy() if isinstance(chunk, torch.Tensor) else np.asarray(chunk)
        c = np.abs(c.reshape(c.shape[0], -1))
        big = (np.isfinite(c) & (c > FLOAT32_MAX)).any(axis=1)
        if valid is not None:
            big &= valid[start : start + _CHECK_CHUNK]
        if big.any():
            i = int(np.flatnonzero(big)[0])
            row = c[i]
            return start + i, float(row[np.isfinite(row)].max())
    return None
