"""``mmib data check PATH --format NAME``: validate a data file with its loader and summarize it."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from mmib.data.dataset import MultimodalDataset
from mmib.errors import UnknownNameError

#: format name → module of its loader and the loader's name (imported lazily: optional dependencies stay optional)
_FORMAT_LOADERS = {
    "mosi": ("mmib.data.loaders.affect", "load_mosi"),
    "mosei": ("mmib.data.loaders.affect", "load_mosei"),
    "urfunny": ("mmib.data.loaders.affect", "load_urfunny"),
    "mustard": ("mmib.data.loaders.affect", "load_mustard"),
    "vision_touch": ("mmib.data.loaders.vision_touch", "load_vision_touch"),
    "mujoco_push": ("mmib.data.loaders.mujoco_push", "load_mujoco_push"),
    "wesad": ("mmib.data.loaders.wesad", "load_wesad"),
    "mimic": ("mmib.data.loaders.mimic", "load_mimic"),
    "generic": ("mmib.data.loaders.generic", "load_generic"),
}


class _LazyLoaders(dict):
    """``FORMATS[name]`` imports the loader on first access."""

    def __missing__(self, key: str) -> Callable[..., MultimodalDataset]:
        if key not in _FORMAT_LOADERS:
            raise UnknownNameError("data format", key, list(_FORMAT_LOADERS))
        import importlib

        module, fn = _FORMAT_LOADERS[key]
        loader = getattr(importlib.import_module(module), fn)
        self[key] = loader
        return loader

    def __contains__(self, key: object) -> bool:
        return key in _FORMAT_LOADERS

    def __iter__(self):
        return iter(_FORMAT_LOADERS)

    def __len__(self) -> int:
        return len(_FORMAT_LOADERS)

    def keys(self):  # type: ignore[override]
        return _FORMAT_LOADERS.keys()


#: format name → loader (``loader(path=..., **options) -> MultimodalDataset``)
FORMATS: dict[str, Callable[..., MultimodalDataset]] = _LazyLoaders()


def summarize(ds: MultimodalDataset, source: str = "") -> str:
    """A printable summary: modalities (kind, shape, rate, dtype, streamed), task, labels and split sizes."""
    spec = ds.spec
    lines = [f"data set '{spec.name}'" + (f" from {source}" if source else "") + f": {len(ds)} samples"]
    if spec.description:
        lines.append(f"  {spec.description}")
    lines.append("  modalities:")
    for m in spec.modalities:
        a = ds.x[m.name]
        dtype = a.dtype
        streamed = " (memory-mapped)" if isinstance(a, np.memmap) else ""
        rate = f", {m.rate:g} Hz" if m.rate else ""
        missing = int((~ds.mask[m.name]).sum())
        miss = f", {missing} missing" if missing else ""
        lens = ""
        if m.name in ds.lengths:
            lv = ds.lengths[m.name]
            lens = f", lengths {int(lv.min())}..{int(lv.max())}"
        lines.append(f"    {m.name}: {m.kind} {tuple(m.shape)}{rate}, {dtype}{streamed}{miss}{lens}")
    task = spec.task
    if task == "classification":
        counts = np.bincount(ds.y.numpy(), minlength=spec.n_classes) if ds.y is not None else None
        lines.append(f"  task: classification, {spec.n_classes} classes"
                     + (f" (counts {counts.tolist()})" if counts is not None else ""))  # fmt: skip
    elif task == "regression":
        lines.append(f"  task: regression, target_dim {spec.target_dim}")
    else:
        lines.append("  task: none (unlabelled)")
    if ds.split is not None:
        parts = ", ".join(f"{s} {int((ds.split == s).sum())}" for s in ("train", "val", "test"))
        lines.append(f"  split (fixed): {parts}")
    else:
        lines.append("  split: none in the data (the data module splits" + (" by group)" if ds.groups is not None else " randomly)"))
    if ds.groups is not None:
        lines.append(f"  groups: {len(np.unique(ds.groups))}")
    if spec.latents:
        lines.append(f"  latents: {', '.join(spec.latents)}")
    return "\n".join(lines)


def loader_options(loader: Callable[..., MultimodalDataset]) -> list[str]:
    """The keyword options a loader takes besides ``path``."""
    sig = inspect.signature(loader)
    return [k for k, p in sig.parameters.items()
            if k != "path" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]  # fmt: skip


def check_file(path: str, format: str, **options: Any) -> str:
    """Read ``path`` with the loader of ``format`` (validating its schema) and return a printable summary.

    ``options`` are the loader's keyword arguments (``--option key=value``), e.g. ``trust_pickle=True`` for a
    pickle-based format whose file you trust.

    Raises:
        UnknownNameError: unknown format or option (the message lists the valid ones).
        DataFileNotFoundError: the file or folder does not exist.
        DataValidationError: the file does not have the expected schema (names the file, key and expected shape).
    """
    loader = FORMATS[format]
    valid = loader_options(loader)
    for k in options:
        if k not in valid:
            raise UnknownNameError(f"option of data format '{format}'", k, valid)
    ds = loader(path=path, **options)
    return summarize(ds, source=str(path))
