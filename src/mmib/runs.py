"""Run-level helpers between the methods and the engine: build a run's data module and method from its config,
reload a finished run (:func:`load_run`), and the metadata recorded with a run (:func:`run_metadata`).

Layers (``docs/guide/layers.md``): this module imports ``config``, ``data`` and ``methods``; the engine (training),
``eval``, ``bench`` and ``api`` import it. It holds no Lightning code, so loading a run does not import the trainer.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mmib.config import split_data_config, to_container
from mmib.data.datamodule import MultimodalDataModule, checkpoint_normalization
from mmib.data.dataset import MultimodalDataset
from mmib.data.registry import build_dataset, get_dataset_entry
from mmib.methods.base import Method
from mmib.methods.registry import build_method, method_from_checkpoint, read_checkpoint, run_checkpoint

PACKAGES = ("mmib", "torch", "lightning", "torchmetrics", "hydra-core", "numpy", "scipy", "scikit-learn", "mvlearn",
            "mne", "mne-nirs", "neurokit2", "dit")


def package_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for p in PACKAGES:
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = None
    return out


def git_commit() -> str | None:
    try:
        here = Path(__file__).resolve().parent
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if r.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return r.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def run_metadata(seed: int) -> dict[str, Any]:
    return {"seed": seed, "versions": package_versions(), "git_commit": git_commit(),
            "python": platform.python_version(), "platform": platform.platform(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def build_datamodule(cfg: DictConfig | dict, dataset: MultimodalDataset | None = None,
                     normalization: dict | None = None) -> MultimodalDataModule:
    """The data module of a config: builds the data set by name unless one is given (Python API); ``normalization``:
    statistics fitted before (a checkpoint's) instead of fitting them on the train split again."""
    c = to_container(cfg)
    name, options, dm = split_data_config(c["data"])
    if dataset is None:
        # a loader that draws its own (predefined) split takes val_fraction / test_fraction itself: it gets the data
        # config's, which the data module would otherwise ignore for a predefined split
        own = get_dataset_entry(name).options
        options.update({k: dm[k] for k in ("val_fraction", "test_fraction") if k in own and k in dm})
        dataset = build_dataset(name, **options)
    return MultimodalDataModule(dataset, seed=int(c["seed"]), normalization=normalization, **dm)


def build_method_from_config(cfg: DictConfig | dict, spec) -> Method:
    c = to_container(cfg)
    return build_method(c["method"]["name"], spec, c["method"], c.get("encoder") or {})


def load_run(run_dir: str | os.PathLike, checkpoint: str | None = None,
             trust_pickle: bool = False) -> tuple[DictConfig, Method, MultimodalDataModule]:
    """Reload a finished run: its config, the method from its checkpoint, and the same data module (same seed →
    same splits; the normalization statistics stored in the checkpoint, or, for a checkpoint written before they were
    stored, the same statistics fitted again on the train split).

    A run folder may come from someone else: its ``config.yaml`` is data, never permission. ``data.trust_pickle``
    stored there is ignored (the data set's pickles are read with the restricted unpickler) unless the caller passes
    ``trust_pickle=True`` (``mmib eval RUN --trust-pickle``)."""
    run_dir, ckpt = run_checkpoint(run_dir, checkpoint)
    cfg = OmegaConf.load(run_dir / "config.yaml")
    stored = read_checkpoint(ckpt)  # read once: the method's weights and the data module's statistics
    method = method_from_checkpoint(stored, str(ckpt))
    data = to_container(cfg).get("data") or {}
    if isinstance(data, dict) and "trust_pickle" in data and not trust_pickle:
        cfg.data.trust_pickle = False  # the folder's own setting does not count (see the docstring)
    dm = build_datamodule(cfg, normalization=checkpoint_normalization(stored, f"checkpoint '{ckpt}'"))
    return cfg, method, dm
