"""The multimodal data set: ``{modality: tensor}`` + ``y`` + ``latents`` + presence mask, validated at the boundary.

A sample (and a batch, with a leading batch dimension) is a dict::

    {"x": {modality: Tensor}, "mask": {modality: BoolTensor}, "y": Tensor, "latents": {name: Tensor},
     "index": LongTensor, "lengths": {modality: LongTensor}}   # "y", "latents", "lengths" only when present

``mask[m][i]`` is False when modality ``m`` is missing for sample ``i`` (its values are then zeros).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from mmib.data.arrays import FLOAT32_MAX, _as_array, _dtype_kind, find_float32_overflow, find_nonfinite
from mmib.data.spec import KIND_NDIM, DatasetSpec, DataValidationError, DataWarning, ModalitySpec

Batch = dict[str, Any]

class MultimodalDataset(Dataset):
    """A validated multimodal data set held in memory (or memory-mapped).

    Args:
        spec: the data set's :class:`DatasetSpec`; every array is checked against it.
        x: ``{modality: array of shape (N, *spec.shape)}``; numeric (float or int; cast to float32).
        y: optional targets, (N,) integer classes for classification or (N,) / (N, target_dim) floats.
        latents: optional ground-truth latents ``{name: (N,) or (N, k) array}``.
        mask: optional presence mask ``{modality: (N,) bool}``; missing samples may hold NaN (they are zeroed).
        lengths: optional valid lengths ``{modality: (N,) int}`` for padded sequences.
        groups: optional group ids (e.g. subjects) for group-wise splits.
        split: optional predefined split per sample, values in {"train", "val", "test"}.
        check_finite: scan every array for NaN/inf (chunked, so memory-mapped data is not loaded at once).

    Raises:
        DataValidationError: on unknown or missing modalities, wrong shapes, ranks, dtypes, NaN/inf, mismatched
            lengths across modalities, or labels out of range — naming the modality/key and what was expected.
    """

    def __init__(
        self,
        spec: DatasetSpec,
        x: Mapping[str, Any],
        y: Any = None,
        latents: Mapping[str, Any] | None = None,
        mask: Mapping[str, Any] | None = None,
        lengths: Mapping[str, Any] | None = None,
        groups: Any = None,
        split: Any = None,
        check_finite: bool = True,
    ) -> None:
        self.spec = spec
        names = spec.modality_names
        unknown = [k for k in x if k not in names]
        if unknown:
            raise DataValidationError(
                f"unknown modality {', '.join(map(repr, unknown))} for data set '{spec.name}'; "
                f"expected modalities: {', '.join(names)}"
            )
        missing = [k for k in names if k not in x]
        if missing:
            raise DataValidationError(
                f"data set '{spec.name}': modality {', '.join(map(repr, missing))} has no array; "
                f"expected modalities: {', '.join(names)}"
            )
        arrays = {k: _as_array(k, "modality", x[k]) for k in names}
        sizes = {k: int(a.shape[0]) if a.ndim > 0 else -1 for k, a in arrays.items()}
        n = sizes[names[0]]
        if len(set(sizes.values())) != 1:
            detail = ", ".join(f"'{k}': {v}" for k, v in sizes.items())
            raise DataValidationError(
                f"data set '{spec.name}': modalities have different numbers of samples ({detail}); "
                "every modality needs one entry per sample"
            )
        if n <= 0:
            raise DataValidationError(f"data set '{spec.name}': no samples (every modality has 0 rows)")
        self.n = n

        self.mask: dict[str, torch.Tensor] = {}
        for k in names:
            if mask is not None and k in mask:
                m = np.asarray(mask[k])
                if m.dtype.kind not in "biuf":
                    raise DataValidationError(f"mask of modality '{k}': expected booleans, got dtype {m.dtype}")
                m = m.astype(bool).reshape(-1)
                if m.shape[0] != n:
                    raise DataValidationError(
                        f"mask of modality '{k}': expected {n} entries (one per sample), got {m.shape[0]}"
                    )
                self.mask[k] = torch.from_numpy(m.copy())
            else:
                self.mask[k] = torch.ones(n, dtype=torch.bool)
        if mask is not None:
            extra = [k for k in mask if k not in names]
            if extra:
                raise DataValidationError(f"mask names unknown modality {extra}; expected one of {list(names)}")

        self.x: dict[str, torch.Tensor | np.ndarray] = {}
        for k in names:
            self.x[k] = self._check_modality(spec.modality(k), arrays[k], check_finite)

        self.lengths: dict[str, torch.Tensor] = {}
        for k, v in (lengths or {}).items():
            if k not in names:
                raise DataValidationError(f"lengths given for unknown modality '{k}'; expected one of {list(names)}")
            la = np.asarray(v)
            if la.dtype.kind not in "iu" and not (la.dtype.kind == "f" and np.all(la == np.round(la))):
                raise DataValidationError(f"lengths of modality '{k}': expected integers, got dtype {la.dtype}")
            lv = torch.as_tensor(la.astype(np.int64), dtype=torch.long).reshape(-1)
            if lv.shape[0] != n:
                raise DataValidationError(f"lengths of modality '{k}': expected {n} entries, got {lv.shape[0]}")
            t_max = self.x[k].shape[1]
            if (lv < 1).any() or (lv > t_max).any():
                raise DataValidationError(f"lengths of modality '{k}': expected values in [1, {t_max}]")
            self.lengths[k] = lv

        self.y = self._check_targets(y)
        self.latents: dict[str, torch.Tensor] = {}
        for k, v in (latents or {}).items():
            a = _as_array(k, "latent", v)
            if a.shape[0] != n:
                raise DataValidationError(f"latent '{k}': expected {n} entries (one per sample), got {a.shape[0]}")
            if _dtype_kind(a) not in ("f", "i", "b"):
                raise DataValidationError(f"latent '{k}': expected a numeric array, got dtype {a.dtype}")
            t = torch.as_tensor(np.asarray(a))
            if t.dtype == torch.float64:
                t = t.float()
            self.latents[k] = t
        self.groups = None if groups is None else np.asarray(_as_array("groups", "key", groups)).reshape(-1)
        if self.groups is not None and self.groups.shape[0] != n:
            raise DataValidationError(f"groups: expected {n} entries (one per sample), got {self.groups.shape[0]}")
        self.split = None if split is None else np.asarray(split).astype(str).reshape(-1)
        if self.split is not None:
            if self.split.shape[0] != n:
                raise DataValidationError(f"split: expected {n} entries (one per sample), got {self.split.shape[0]}")
            bad = sorted(set(self.split) - {"train", "val", "test"})
            if bad:
                raise DataValidationError(f"split: expected values in train/val/test, got {bad}")
        #: per-modality (mean, std) applied on access, set by the data module (fitted on the train split)
        self.normalization: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        #: the labels as given while a data module's training-label noise (``data.train_label_noise``) is in ``y``
        #: (else None)
        self.clean_y: torch.Tensor | None = None
        #: the file or folder the data came from (set by the file loaders; None for in-memory arrays)
        self.source: str | None = None

    # ---------------------------------------------------------------- validation
    def _check_modality(self, ms: ModalitySpec, a: Any, check_finite: bool) -> torch.Tensor | np.ndarray:
        k = ms.name
        want_ndim = KIND_NDIM[ms.kind] + 1
        if a.ndim != want_ndim:
            raise DataValidationError(
                f"modality '{k}' ({ms.kind}): expected an array of rank {want_ndim} "
                f"(N, {', '.join(str(s) if s else 'T' for s in ms.shape)}), got shape {tuple(a.shape)}"
            )
        for axis, (want, got) in enumerate(zip(ms.shape, a.shape[1:]), start=1):
            if want is not None and want != got:
                raise DataValidationError(
                    f"modality '{k}' ({ms.kind}): expected per-sample shape {ms.shape}, got "
                    f"{tuple(a.shape[1:])} (axis {axis}: {got} instead of {want})"
                )
        kind = _dtype_kind(a)
        if kind not in ("f", "i"):
            raise DataValidationError(
                f"modality '{k}': expected a real numeric dtype (float or int), got {a.dtype}"
            )
        valid = self.mask[k].numpy()
        if check_finite and kind == "f":
            bad = find_nonfinite(a, valid)
            if bad is not None:
                raise DataValidationError(
                    f"modality '{k}': NaN or inf in sample {bad}; clean the data, or mark the sample missing "
                    "with the presence mask"
                )
            over = find_float32_overflow(a, valid)
            if over is not None:
                raise DataValidationError(
                    f"modality '{k}': values exceed the float32 range (|value| {over[1]:.3g} in sample {over[0]}; "
                    f"float32 holds up to {FLOAT32_MAX:.3g}); rescale the data"
                )
        if isinstance(a, np.memmap):
            return a  # streamed: converted per access
        t = torch.as_tensor(np.asarray(a)) if not isinstance(a, torch.Tensor) else a
        t = t.to(torch.float32)
        if not valid.all():
            t = t.clone()
            t[torch.from_numpy(~valid)] = 0.0
        return t.contiguous()

    def _check_targets(self, y: Any) -> torch.Tensor | None:
        spec = self.spec
        if y is None:
            return None
        a = _as_array("y", "labels", y)
        a = a.numpy() if isinstance(a, torch.Tensor) else a
        if a.shape[0] != self.n:
            raise DataValidationError(f"labels y: expected {self.n} entries (one per sample), got {a.shape[0]}")
        if spec.task == "classification":
            if a.ndim > 1 and int(np.prod(a.shape[1:])) != 1:
                raise DataValidationError(
                    f"labels y: classification expects one class index per sample (N,), got shape {tuple(a.shape)}"
                )
            if a.dtype.kind not in "iub":
                if a.dtype.kind == "f" and np.all(np.isfinite(a)) and np.all(a == np.round(a)):
                    a = a.astype(np.int64)
                else:
                    what = "class names (strings)" if a.dtype.kind in "USO" else f"dtype {a.dtype}"
                    raise DataValidationError(
                        f"labels y: classification expects integer class indices 0..{spec.n_classes - 1}, got {what}"
                    )
            a = a.reshape(-1).astype(np.int64)
            lo, hi = int(a.min()), int(a.max())
            if lo < 0 or hi >= spec.n_classes:
                raise DataValidationError(
                    f"labels y: class indices must lie in [0, {spec.n_classes - 1}], got range [{lo}, {hi}]"
                )
            if lo == hi and self.n > 1:
                warnings.warn(
                    f"labels y of data set '{spec.name}': all {self.n} samples are class {lo}; a classifier or probe "
                    "trained or tested on them measures nothing (accuracy is trivially high or meaningless)",
                    DataWarning, stacklevel=3,
                )
            return torch.from_numpy(a)
        if a.dtype.kind not in "fiub":
            raise DataValidationError(f"labels y: regression expects numeric targets, got dtype {a.dtype}")
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            i = int(np.flatnonzero(~np.isfinite(a.reshape(self.n, -1)).all(axis=1))[0])
            raise DataValidationError(f"labels y: NaN or inf in sample {i}")
        if np.abs(a).max() > FLOAT32_MAX:
            raise DataValidationError("labels y: regression targets exceed the float32 range; rescale them")
        return torch.from_numpy(a.astype(np.float32))

    # ---------------------------------------------------------------- access
    def __len__(self) -> int:
        return self.n

    def _modality_batch(self, k: str, idx: torch.Tensor) -> torch.Tensor:
        a = self.x[k]
        if isinstance(a, np.ndarray):
            ii = idx.numpy()
            order = np.argsort(ii)
            rows = np.asarray(a[ii[order]], dtype=np.float32)
            t = torch.from_numpy(rows)[torch.from_numpy(np.argsort(order))]
            m = self.mask[k][idx]
            if not bool(m.all()):
                t[~m] = 0.0
        else:
            t = a[idx]
        if k in self.normalization:
            mean, std = self.normalization[k]
            t = (t - mean) / std
            m = self.mask[k][idx]
            if not bool(m.all()):
                t = t.masked_fill(~m.view(-1, *([1] * (t.dim() - 1))), 0.0)
        return t

    def get_batch(self, indices: Sequence[int] | torch.Tensor | np.ndarray) -> Batch:
        """A collated batch for these sample indices (fast path used by the data loaders)."""
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long).reshape(-1)
        out: Batch = {
            "x": {k: self._modality_batch(k, idx) for k in self.spec.modality_names},
            "mask": {k: self.mask[k][idx] for k in self.spec.modality_names},
            "index": idx,
        }
        if self.y is not None:
            out["y"] = self.y[idx]
        if self.latents:
            out["latents"] = {k: v[idx] for k, v in self.latents.items()}
        if self.lengths:
            out["lengths"] = {k: v[idx] for k, v in self.lengths.items()}
        return out

    def __getitems__(self, indices: Sequence[int]) -> Batch:
        return self.get_batch(indices)

    def __getitem__(self, i: int) -> Batch:
        if isinstance(i, (list, tuple, np.ndarray, torch.Tensor)) and np.ndim(i) > 0:
            return self.get_batch(i)
        i = int(i)
        if i < 0 or i >= self.n:
            raise IndexError(f"sample index {i} out of range for {self.n} samples")
        b = self.get_batch([i])
        return _unbatch(b)


def _unbatch(b: Batch) -> Batch:
    out: Batch = {}
    for key, v in b.items():
        if isinstance(v, dict):
            out[key] = {k: t[0] for k, t in v.items()}
        else:
            out[key] = v[0]
    return out


def _stack(items: list[Any]) -> Any:
    first = items[0]
    if isinstance(first, dict):
        return {k: _stack([it[k] for it in items]) for k in first}
    if isinstance(first, torch.Tensor):
        return torch.stack(items)
    return torch.as_tensor(items)


def collate_multimodal(samples: list[Batch] | Batch) -> Batch:
    """Collate a list of samples into a batch; a batch that is already collated (``__getitems__``) passes through.

    Raises:
        DataValidationError: when samples disagree on their modalities.
    """
    if isinstance(samples, dict):
        return samples
    if not samples:
        raise DataValidationError("collate: empty list of samples")
    keys = set(samples[0]["x"])
    for i, s in enumerate(samples[1:], start=1):
        if set(s["x"]) != keys:
            raise DataValidationError(
                f"collate: sample {i} has modalities {sorted(s['x'])}, sample 0 has {sorted(keys)}"
            )
    return _stack(samples)


def validate_batch(batch: Batch, spec: DatasetSpec, modalities: Sequence[str] | None = None) -> tuple[str, ...]:
    """Check a batch handed to a method: modality names, ranks, per-sample shapes, equal batch sizes, finiteness.

    Returns the modalities (in the data set's order) to use.
    """
    if not isinstance(batch, dict) or "x" not in batch:
        raise DataValidationError("a batch is a dict with key 'x' mapping modality names to tensors")
    present = tuple(batch["x"])
    unknown = [k for k in present if k not in spec.modality_names]
    if unknown:
        raise DataValidationError(
            f"batch has unknown modality {', '.join(map(repr, unknown))}; expected: {', '.join(spec.modality_names)}"
        )
    mods = spec.check_modalities(modalities if modalities is not None else present)
    sizes = {}
    for k in mods:
        if k not in batch["x"]:
            raise DataValidationError(f"modality '{k}' was requested but the batch does not hold it (has {present})")
        t = batch["x"][k]
        ms = spec.modality(k)
        if not isinstance(t, torch.Tensor):
            raise DataValidationError(f"modality '{k}': expected a torch.Tensor, got {type(t).__name__}")
        if t.dim() != KIND_NDIM[ms.kind] + 1:
            raise DataValidationError(
                f"modality '{k}' ({ms.kind}): expected a batch of rank {KIND_NDIM[ms.kind] + 1}, got shape {tuple(t.shape)}"
            )
        for want, got in zip(ms.shape, t.shape[1:]):
            if want is not None and want != got:
                raise DataValidationError(
                    f"modality '{k}': expected per-sample shape {ms.shape}, got {tuple(t.shape[1:])}"
                )
        if not t.is_floating_point():
            raise DataValidationError(f"modality '{k}': expected a floating-point tensor, got {t.dtype}")
        if not torch.isfinite(t).all():
            bad = (~torch.isfinite(t.reshape(t.shape[0], -1))).any(dim=1).nonzero()[0].item()
            raise DataValidationError(f"modality '{k}': NaN or inf in batch row {bad}")
        sizes[k] = t.shape[0]
    if len(set(sizes.values())) > 1:
        raise DataValidationError(f"modalities have different batch sizes: {sizes}")
    return mods


def batch_to_device(batch: Batch, device: torch.device | str) -> Batch:
    """The batch with every tensor (also inside the per-modality dicts ``x``, ``mask``, ``latents``…) on ``device``."""
    out: Batch = {}
    for k, v in batch.items():
        if isinstance(v, dict):
            out[k] = {kk: vv.to(device) if isinstance(vv, torch.Tensor) else vv for kk, vv in v.items()}
        elif isinstance(v, torch.Tensor):
            out[k] = v.to(device)
        else:
            out[k] = v
    return out


def select_batch_rows(batch: Batch, keep: torch.Tensor) -> Batch:
    """The batch restricted to the samples where the boolean (or index) tensor ``keep`` selects them: every
    per-sample tensor (first dimension = batch size), also inside the per-modality dicts; other entries unchanged."""
    n = keep.shape[0] if keep.dtype == torch.bool else None

    def pick(t: Any) -> Any:
        if isinstance(t, torch.Tensor) and t.dim() > 0 and (n is None or t.shape[0] == n):
            return t[keep]
        return t

    return {k: ({kk: pick(vv) for kk, vv in v.items()} if isinstance(v, dict) else pick(v)) for k, v in batch.items()}


def complete_rows_mask(batch: Batch, modalities: Sequence[str]) -> torch.Tensor | None:
    """Boolean mask of the samples that hold every modality in ``modalities`` (presence mask ``batch["mask"]``), or
    ``None`` when every sample holds all of them."""
    keep = None
    for m in modalities:
        pm = (batch.get("mask") or {}).get(m)
        if pm is not None and not bool(pm.all()):
            keep = pm if keep is None else keep & pm
    return keep
