"""The training engine: a seeded, deterministic Lightning run that writes ``runs/<name>/``.

Every run folder holds the resolved ``config.yaml``, ``run.json`` (seed, package versions, git commit, data set
spec and split sizes, timings), ``checkpoints/`` (``last.ckpt`` and the latest epoch), and CSV metrics under
``logs/version_<k>/metrics.csv`` (one version per start, so a resumed run keeps its earlier logs).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf

from mmib.config import split_data_config, to_container
from mmib.data.datamodule import MultimodalDataModule
from mmib.data.dataset import MultimodalDataset
from mmib.data.registry import build_dataset, get_dataset_entry
from mmib.errors import MMIBError
from mmib.methods.base import Method
from mmib.methods.registry import build_method, read_checkpoint
from mmib.utils.io import atomic_write_json, atomic_write_text

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


def run_name(cfg: DictConfig | dict) -> str:
    c = to_container(cfg)
    if c.get("name"):
        return str(c["name"])
    return f"{c['method']['name']}-{c['data']['name']}-s{c['seed']}"


def build_datamodule(cfg: DictConfig | dict, dataset: MultimodalDataset | None = None) -> MultimodalDataModule:
    """The data module of a config: builds the data set by name unless one is given (Python API)."""
    c = to_container(cfg)
    name, options, dm = split_data_config(c["data"])
    if dataset is None:
        # a loader that draws its own (predefined) split takes val_fraction / test_fraction itself: it gets the data
        # config's, which the data module would otherwise ignore for a predefined split
        own = get_dataset_entry(name).options
        options.update({k: dm[k] for k in ("val_fraction", "test_fraction") if k in own and k in dm})
        dataset = build_dataset(name, **options)
    return MultimodalDataModule(dataset, seed=int(c["seed"]), **dm)


def build_method_from_config(cfg: DictConfig | dict, spec) -> Method:
    c = to_container(cfg)
    return build_method(c["method"]["name"], spec, c["method"], c.get("encoder") or {})


@dataclass
class TrainResult:
    method: Method
    datamodule: MultimodalDataModule
    run_dir: Path
    trainer: L.Trainer
    metrics: dict[str, float] = field(default_factory=dict)


def _quiet_lightning() -> None:
    import warnings

    # the data module restores the position within the epoch itself (MultimodalDataModule.state_dict)
    warnings.filterwarnings("ignore", message=".*your dataloader is not resumable.*")
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda",
                 "lightning.fabric.utilities.seed", "lightning.pytorch.callbacks.model_summary"):
        logging.getLogger(name).setLevel(logging.WARNING)


class RNGStateCallback(L.Callback):
    """Saves the global torch / numpy / python random states in every checkpoint and restores them on resume, so a
    resumed run draws the same random numbers (dropout, augmentations) as an uninterrupted one."""

    def on_save_checkpoint(self, trainer, pl_module, checkpoint):
        import random

        import numpy as np

        name, keys, pos, has_gauss, cached = np.random.get_state()
        state = {  # plain types and tensors only: checkpoints load with weights_only=True
            "torch": torch.get_rng_state(),
            "numpy": [str(name), torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
            "python": random.getstate(),
        }
        checkpoint["mmib_rng"] = state
        if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            # every rank dumps the checkpoint (rank 0 alone writes it): keep each rank's own states, so a resumed
            # multi-process run does not give every rank rank 0's random numbers
            per_rank: list[Any] = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(per_rank, state)
            checkpoint["mmib_rng_per_rank"] = per_rank

    def on_load_checkpoint(self, trainer, pl_module, checkpoint):
        import random

        import numpy as np

        st = checkpoint.get("mmib_rng")
        per_rank = checkpoint.get("mmib_rng_per_rank")
        if per_rank and len(per_rank) == trainer.world_size:
            st = per_rank[trainer.global_rank]
        if st:
            torch.set_rng_state(st["torch"])
            name, keys, pos, has_gauss, cached = st["numpy"]
            np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
            random.setstate(st["python"])


def make_trainer(tcfg: dict[str, Any], run_dir: Path, callbacks: list | None = None, loggers: bool = True) -> L.Trainer:
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    t = dict(tcfg)
    cbs = [RNGStateCallback(), *(callbacks or [])]
    ckpt_dir = run_dir / "checkpoints"
    every_epochs = t.pop("checkpoint_every_n_epochs", 1)
    every_steps = t.pop("checkpoint_every_n_steps", None)
    cbs.append(ModelCheckpoint(dirpath=ckpt_dir, filename="epoch{epoch:03d}", auto_insert_metric_name=False,
                               save_last=True, save_top_k=1, every_n_epochs=every_epochs))
    if every_steps:
        cbs.append(ModelCheckpoint(dirpath=ckpt_dir, filename="step{step:07d}", auto_insert_metric_name=False,
                                   save_last=True, save_top_k=1, every_n_train_steps=int(every_steps)))
    progress = bool(t.pop("enable_progress_bar", True))
    if progress:
        try:
            from lightning.pytorch.callbacks import RichProgressBar

            cbs.append(RichProgressBar(leave=True))
        except (ImportError, ModuleNotFoundError):  # pragma: no cover - rich is a dependency
            pass
    for k in ("limit_train_batches", "limit_val_batches"):
        if t.get(k) is None:
            t.pop(k, None)
    return L.Trainer(
        default_root_dir=str(run_dir),
        callbacks=cbs,
        logger=CSVLogger(save_dir=str(run_dir), name="logs") if loggers else False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        use_distributed_sampler=False,  # the data module splits its own epoch-seeded batches across processes
        **t,
    )


def resolve_resume(resume: str | None, run_dir: Path) -> str | None:
    if not resume:
        return None
    if resume == "last":
        p = run_dir / "checkpoints" / "last.ckpt"
    else:
        p = Path(resume)
        if p.is_dir():
            p = p / "checkpoints" / "last.ckpt"
    if not p.is_file():
        raise MMIBError(f"resume: no checkpoint at '{p}' (give a .ckpt file, a run folder, or 'last')")
    read_checkpoint(p, mmap=True)  # a truncated or corrupted file: one line, not Lightning's traceback
    return str(p)


def rank_seed(seed: int, rank: int) -> int:
    """The global seed of process ``rank``: ``seed`` on rank 0 (a single-process run is unchanged), ``seed + rank``
    on the others, so dropout, augmentations and other draws from the global RNG differ between processes. The data
    module keeps the run seed on every rank (same splits, same epoch permutation, sharded by rank)."""
    return int(seed) + int(rank)


def is_rank_zero() -> bool:
    """True on the process that writes files and prints (global rank 0, also before the process group exists)."""
    from mmib.utils.dist import launch_rank

    return launch_rank() == 0


def barrier() -> None:
    """Wait for every process when a process group exists (after Lightning's DDP fit); a no-op otherwise."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def train(cfg: DictConfig | dict, dataset: MultimodalDataset | None = None, callbacks: list | None = None) -> TrainResult:
    """Train the method of ``cfg`` on its data set and write the run folder."""
    _quiet_lightning()
    c = to_container(cfg)
    seed = int(c["seed"])
    L.seed_everything(seed, workers=True, verbose=False)
    dm = build_datamodule(c, dataset)
    from mmib.utils.dist import launch_rank

    rank = launch_rank()
    # the run seed (recorded in run.json) on rank 0; seed + rank on the others, set before the method is built so
    # that everything it draws from the global RNG (e.g. the augmenter's seed) differs per process (rank_seed)
    L.seed_everything(rank_seed(seed, rank), workers=True, verbose=False)
    method = build_method_from_config(c, dm.spec)
    run_dir = Path(c.get("run_dir") or "runs") / run_name(c)
    run_dir.mkdir(parents=True, exist_ok=True)
    resume = resolve_resume(c.get("resume"), run_dir)

    if rank == 0:
        atomic_write_text(run_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(c)))
        meta = run_metadata(seed)
        meta.update({"method": c["method"]["name"], "data": dm.spec.to_dict(), "splits": dm.summary(),
                     "resumed_from": resume})
        atomic_write_json(run_dir / "run.json", meta)
    trainer = make_trainer(c["trainer"], run_dir, callbacks)
    t0 = time.time()
    trainer.fit(method, datamodule=dm, ckpt_path=resume)
    elapsed = time.time() - t0
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.as_tensor(v).numel() == 1}
    if trainer.is_global_zero:
        meta = json.loads((run_dir / "run.json").read_text())
        meta.update({"train_seconds": elapsed, "final_metrics": metrics, "epochs": trainer.current_epoch,
                     "global_step": trainer.global_step,
                     "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
        atomic_write_json(run_dir / "run.json", meta)
    method.eval()
    return TrainResult(method, dm, run_dir, trainer, metrics)


def load_run(run_dir: str | os.PathLike, checkpoint: str | None = None) -> tuple[DictConfig, Method, MultimodalDataModule]:
    """Reload a finished run: its config, the method from its checkpoint, and the same data module (same seed →
    same splits and normalization)."""
    from mmib.methods.registry import load_method

    run_dir = Path(run_dir)
    if run_dir.suffix == ".ckpt":
        checkpoint, run_dir = str(run_dir), run_dir.parent.parent
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise MMIBError(f"'{run_dir}' is not an mmib run folder (no config.yaml); train one with `mmib train`")
    cfg = OmegaConf.load(cfg_path)
    ckpt = Path(checkpoint) if checkpoint else run_dir / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        raise MMIBError(f"run '{run_dir}': no checkpoint at '{ckpt}'")
    method = load_method(str(ckpt))
    dm = build_datamodule(cfg)
    return cfg, method, dm
