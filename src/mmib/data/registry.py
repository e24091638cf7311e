"""Registry of data sets, found by name: ``build_dataset("mfeat", views=[0, 2, 5])``.

A builder is a function that takes the data set's options as keyword arguments and returns a
:class:`~mmib.data.dataset.MultimodalDataset`. Register one with :func:`register_dataset`.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mmib.data.dataset import MultimodalDataset
from mmib.errors import UnknownNameError


@dataclass
class DatasetEntry:
    name: str
    builder: Callable[..., MultimodalDataset]
    description: str
    #: import path of an optional dependency and the extra that provides it, checked before building
    requires: tuple[tuple[str, str], ...] = ()

    @property
    def options(self) -> dict[str, Any]:
        sig = inspect.signature(self.builder)
        return {
            k: (None if p.default is inspect.Parameter.empty else p.default)
            for k, p in sig.parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }


DATASETS: dict[str, DatasetEntry] = {}

#: modules that register data sets when imported (kept lazy so that optional dependencies stay optional)
_DATASET_MODULES = [
    "mmib.data.physio.datasets",
    "mmib.data.loaders.mfeat",
    "mmib.data.loaders.affect",
    "mmib.data.loaders.vision_touch",
    "mmib.data.loaders.mujoco_push",
    "mmib.data.loaders.wesad",
    "mmib.data.loaders.mimic",
    "mmib.data.loaders.generic",
    "mmib.data.loaders.packaged",
    "mmib.data.synthetic.align",
    "mmib.data.synthetic.cox_sim",
    "mmib.data.synthetic.rus", "mmib.data.synthetic.factorcl_sim",
    "mmib.data.synthetic.omib_sim",
    "mmib.data.synthetic.trifeature",
    "mmib.data.synthetic.xor_align",
]


def register_dataset(name: str, description: str = "", requires: tuple[tuple[str, str], ...] = ()):
    """Decorator registering a data set builder under ``name``."""

    def deco(fn: Callable[..., MultimodalDataset]) -> Callable[..., MultimodalDataset]:
        if name in DATASETS and DATASETS[name].builder is not fn:
            raise ValueError(f"data set '{name}' is already registered")
        DATASETS[name] = DatasetEntry(name, fn, description or (fn.__doc__ or "").strip().split("\n")[0], requires)
        return fn

    return deco


def _load_all() -> None:
    for mod in _DATASET_MODULES:
        importlib.import_module(mod)


def dataset_names() -> list[str]:
    _load_all()
    return sorted(DATASETS)


def get_dataset_entry(name: str) -> DatasetEntry:
    _load_all()
    if name not in DATASETS:
        raise UnknownNameError("data set", name, list(DATASETS))
    return DATASETS[name]


def build_dataset(name: str, **options: Any) -> MultimodalDataset:
    """Build the registered data set ``name`` with its options.

    Raises:
        UnknownNameError: for an unknown data set or option (the message lists the valid ones).
        MissingDependencyError: when an optional dependency of this data set is not installed.
    """
    entry = get_dataset_entry(name)
    valid = entry.options
    for k in options:
        if k not in valid:
            raise UnknownNameError(f"option of data set '{name}'", k, list(valid))
    from mmib.utils.deps import require

    for module, extra in entry.requires:
        require(module, extra, f"data set '{name}'")
    return entry.builder(**options)
