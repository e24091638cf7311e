"""The training engine: a seeded, deterministic Lightning run that writes ``runs/<name>/``.

Every run folder holds the resolved ``config.yaml``, ``run.json`` (seed, package versions, git commit, data set
spec and split sizes, timings), ``checkpoints/`` (``last.ckpt`` and the latest epoch), and CSV metrics under
``logs/version_<k>/metrics.csv`` (one version per start, so a resumed run keeps its earlier logs).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf

from mmib.config import check_train_config, resume_checkpoint_path, to_container
from mmib.data.datamodule import MultimodalDataModule
from mmib.data.dataset import MultimodalDataset
from mmib.errors import MMIBError
from mmib.methods.base import Method
from mmib.methods.registry import read_checkpoint
from mmib.runs import build_datamodule, build_method_from_config, run_metadata
from mmib.utils.checkpoint import add_digest
from mmib.utils.io import atomic_write_json, atomic_write_text


def run_name(cfg: DictConfig | dict) -> str:
    c = to_container(cfg)
    if c.get("name"):
        return str(c["name"])
    return f"{c['method']['name']}-{c['data']['name']}-s{c['seed']}"


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


class SafeCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O with mmib's guarantees (:mod:`mmib.utils.checkpoint`): every checkpoint written
    carries a digest of its content, and every checkpoint read — by a resumed fit too — is loaded with
    ``weights_only=True`` (never executing code) and checked against its digest."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        super().save_checkpoint(add_digest(checkpoint), path, storage_options)

    def load_checkpoint(self, path, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        return read_checkpoint(path, map_location="cpu")


class RunInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C (SIGINT). ``checkpoint`` is the file to resume from (``resume=last``), or None
    when the run had not written one yet."""

    def __init__(self, run_dir: Path, checkpoint: Path | None):
        super().__init__(str(run_dir))
        self.run_dir, self.checkpoint = run_dir, checkpoint


class InterruptCallback(L.Callback):
    """Ctrl-C that loses nothing.

    The first SIGINT during ``fit`` only sets a flag (:meth:`request_stop`); at the end of the current training batch
    this callback writes ``last.ckpt`` — the same consistent state as a periodic step checkpoint, so resuming with
    ``resume=last`` gives bit-identical weights to an uninterrupted run — and raises ``KeyboardInterrupt``. A second
    SIGINT interrupts at once (Python's default). A ``KeyboardInterrupt`` raised by other code between two training
    batches (after one batch's end, before the next batch's forward pass) is also checkpointed; one raised in the
    middle of a step is not (the step's state is half-updated), and ``resume=last`` then continues from the last
    periodic checkpoint.
    """

    def __init__(self, last: Path):
        self.last = Path(last)
        self.stop_requested = False
        self.saved: Path | None = None
        self._at_boundary = False  # between a training batch's end and the next batch's forward pass

    def request_stop(self, signum=None, frame=None) -> None:
        if self.stop_requested:  # the second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.stop_requested = True

    def _save(self, trainer) -> None:
        trainer.save_checkpoint(self.last, weights_only=False)  # the full state (optimizer, loops), as periodic ones
        self.saved = self.last

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._at_boundary = False  # this callback runs last: the forward pass follows

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._at_boundary = trainer.accumulate_grad_batches == 1  # else a batch end may sit inside a step
        if self.stop_requested:
            self._save(trainer)
            raise KeyboardInterrupt

    def on_validation_start(self, trainer, pl_module):
        self._at_boundary = False

    def on_train_epoch_end(self, trainer, pl_module):
        self._at_boundary = False

    def on_exception(self, trainer, pl_module, exception):
        if isinstance(exception, KeyboardInterrupt) and self.saved is None and self._at_boundary:
            self._save(trainer)


def make_trainer(tcfg: dict[str, Any], run_dir: Path, callbacks: list | None = None, loggers: bool = True) -> L.Trainer:
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import CSVLogger

    t = dict(tcfg)
    cbs = [RNGStateCallback(), *(callbacks or [])]
    ckpt_dir = run_dir / "checkpoints"
    every_epochs = t.pop("checkpoint_every_n_epochs", 1)
    every_steps = t.pop("checkpoint_every_n_steps", None)
    # enable_version_counter=False: a run folder holds one run (see train), so last.ckpt is always this run's
    cbs.append(ModelCheckpoint(dirpath=ckpt_dir, filename="epoch{epoch:03d}", auto_insert_metric_name=False,
                               save_last=True, save_top_k=1, every_n_epochs=every_epochs,
                               enable_version_counter=False))
    if every_steps:
        cbs.append(ModelCheckpoint(dirpath=ckpt_dir, filename="step{step:07d}", auto_insert_metric_name=False,
                                   save_last=True, save_top_k=1, every_n_train_steps=int(every_steps),
                                   enable_version_counter=False))
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
    cbs.append(InterruptCallback(ckpt_dir / "last.ckpt"))  # last: it sees the state after every other callback
    return L.Trainer(
        default_root_dir=str(run_dir),
        callbacks=cbs,
        plugins=[SafeCheckpointIO()],
        logger=CSVLogger(save_dir=str(run_dir), name="logs") if loggers else False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        use_distributed_sampler=False,  # the data module splits its own epoch-seeded batches across processes
        **t,
    )


def resolve_resume(resume: str | None, run_dir: Path) -> str | None:
    """The checkpoint file ``resume=`` names (``last``, a run folder or a file), or None. The checkpoint itself was
    read, digest-checked and compared with the config by :func:`mmib.config.check_train_config`."""
    return str(resume_checkpoint_path(str(resume), run_dir)) if resume else None


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


def run_folder(cfg: DictConfig | dict) -> Path:
    """``<run_dir>/<name>``; the name must be one plain folder name, so a run never writes outside ``run_dir``."""
    c = to_container(cfg)
    if c.get("name") is not None and not isinstance(c.get("name"), str):
        raise MMIBError(f"name={c.get('name')!r}: a run name must be a string, e.g. name=my-run")
    name = run_name(c)
    if len(name.encode()) > 200:
        raise MMIBError(f"name='{name[:40]}...': a run name must be at most 200 bytes long (a folder name)")
    bad = (not name.strip() or name != name.strip() or name in (".", "..") or name.startswith(".") or "/" in name or "\\" in name
           or (os.altsep and os.altsep in name) or "\x00" in name)
    if bad:
        raise MMIBError(f"name='{name}': a run name must be one folder name (no '/', '\\', '..' or leading '.'), "
                        f"e.g. name=my-run; the folder goes under run_dir='{c.get('run_dir') or 'runs'}'")
    return Path(c.get("run_dir") or "runs") / name


def is_run_folder(path: str | os.PathLike) -> bool:
    """A folder holds a run if it has ``config.yaml`` or ``checkpoints/`` (the run-folder rule)."""
    p = Path(path)
    return (p / "config.yaml").exists() or (p / "checkpoints").exists()


def move_run_aside(run_dir: Path) -> Path:
    """Rename an existing run to ``<name>.replaced-<time>`` beside it (``overwrite=true``); nothing is deleted."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside = run_dir.with_name(f"{run_dir.name}.replaced-{stamp}")
    k = 1
    while aside.exists():
        k += 1
        aside = run_dir.with_name(f"{run_dir.name}.replaced-{stamp}-{k}")
    os.rename(run_dir, aside)
    return aside


def lock_run(run_dir: Path):
    """An exclusive lock on the run name (a ``.<name>.lock`` file beside the folder), taken without waiting: a second
    run started with the same name while the first runs fails at once instead of writing into the same folder."""
    from filelock import FileLock, Timeout

    try:
        run_dir.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise MMIBError(f"run_dir '{run_dir.parent}' cannot be created ({e.strerror or e}); give a writable "
                        "run_dir=") from None
    lock = FileLock(str(run_dir.parent / f".{run_dir.name}.lock"), timeout=0, thread_local=False, is_singleton=False)
    try:
        lock.acquire()
    except Timeout:
        raise MMIBError(f"run '{run_dir}' is being written by another process right now; wait for it to finish or "
                        "choose another name=") from None
    return lock


class _RunRecordCallback(L.Callback):
    """Writes ``config.yaml`` and ``run.json`` once ``fit`` has set everything up (data loaders built, checkpoint
    restored, sanity check passed), so an attempt that fails before training starts leaves the files of an earlier
    run untouched."""

    def __init__(self, run_dir: Path, config_yaml: str, meta: dict[str, Any], resumed: bool):
        self.run_dir, self.config_yaml, self.meta, self.resumed = run_dir, config_yaml, meta, resumed
        self.started = False

    def on_train_start(self, trainer, pl_module):  # after the data loaders and the checkpoint are in place
        if trainer.is_global_zero:
            meta = dict(self.meta)
            old = self.run_dir / "run.json"
            if self.resumed and old.is_file():
                try:
                    prev = json.loads(old.read_text())
                except (OSError, ValueError):
                    prev = {}
                attempts = list(prev.get("attempts") or [])
                attempts.append({k: prev.get(k) for k in ("started", "finished", "status", "epochs", "global_step",
                                                          "final_metrics") if k in prev})
                meta["attempts"] = attempts  # what earlier attempts reached; the run continues from last.ckpt
            meta["status"] = "running"
            atomic_write_text(self.run_dir / "config.yaml", self.config_yaml)
            atomic_write_json(self.run_dir / "run.json", meta)
        self.started = True


def _update_run_json(run_dir: Path, **fields: Any) -> None:
    path = run_dir / "run.json"
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    meta.update(fields)
    atomic_write_json(path, meta)


def train(cfg: DictConfig | dict, dataset: MultimodalDataset | None = None, callbacks: list | None = None) -> TrainResult:
    """Train the method of ``cfg`` on its data set and write the run folder ``<run_dir>/<name>``.

    The run-folder rule: a folder holding ``config.yaml`` or ``checkpoints/`` is a run. Training into it needs
    ``resume=last`` (continue it) or ``overwrite=true`` (move it aside first); otherwise this stops with an error
    naming the choices. A lock on the name stops a second concurrent run with the same name. Ctrl-C saves a
    checkpoint and raises :class:`RunInterrupted` (the CLI exits with code 130).
    """
    _quiet_lightning()
    c = to_container(cfg)
    check_train_config(c)  # one-line errors for bad settings, before anything is built or written
    from mmib.utils.dist import launch_rank

    rank = launch_rank()
    run_dir = run_folder(c)
    lock = lock_run(run_dir) if rank == 0 else None  # rank 0 alone writes the folder
    created = False
    try:
        resume = resolve_resume(c.get("resume"), run_dir)
        if rank == 0 and not resume and is_run_folder(run_dir):
            if not c.get("overwrite"):
                if (run_dir / "checkpoints" / "last.ckpt").is_file():
                    raise MMIBError(
                        f"run folder '{run_dir}' already holds a run; continue it with resume=last, choose another "
                        f"name=, or give overwrite=true (moves the old run aside to '{run_dir.name}.replaced-<time>')")
                raise MMIBError(
                    f"run folder '{run_dir}' holds a run that stopped before its first checkpoint (nothing to resume); "
                    f"choose another name=, or give overwrite=true (moves it aside to "
                    f"'{run_dir.name}.replaced-<time>')")
            aside = move_run_aside(run_dir)
            logging.getLogger(__name__).warning("overwrite=true: the earlier run '%s' was moved to '%s'", run_dir, aside)
        seed = int(c["seed"])
        L.seed_everything(seed, workers=True, verbose=False)
        with _one_line("data settings"):
            dm = build_datamodule(c, dataset)
        # the run seed (recorded in run.json) on rank 0; seed + rank on the others, set before the method is built so
        # that everything it draws from the global RNG (e.g. the augmenter's seed) differs per process (rank_seed)
        L.seed_everything(rank_seed(seed, rank), workers=True, verbose=False)
        with _one_line(f"method '{c['method']['name']}' settings"):
            method = build_method_from_config(c, dm.spec)
        created = not run_dir.exists()
        run_dir.mkdir(parents=True, exist_ok=True)

        meta = run_metadata(seed)
        meta.update({"method": c["method"]["name"], "data": dm.spec.to_dict(), "splits": dm.summary(),
                     "resumed_from": resume})
        record = _RunRecordCallback(run_dir, OmegaConf.to_yaml(OmegaConf.create(c)), meta, resumed=bool(resume))
        with _one_line("trainer settings"):
            trainer = make_trainer(c["trainer"], run_dir, [record, *(callbacks or [])])
        interrupt = next(cb for cb in trainer.callbacks if isinstance(cb, InterruptCallback))
        t0 = time.time()
        try:
            with _sigint_to(interrupt, enabled=trainer.world_size == 1):
                trainer.fit(method, datamodule=dm, ckpt_path=resume, weights_only=True)
        except (SystemExit, KeyboardInterrupt) as e:
            if not (isinstance(e, KeyboardInterrupt) or trainer.interrupted):
                raise
            last = run_dir / "checkpoints" / "last.ckpt"
            ckpt = interrupt.saved or (last if last.is_file() else None)
            if trainer.is_global_zero and record.started:
                _update_run_json(run_dir, status="interrupted", interrupted=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                 global_step=trainer.global_step, epochs=trainer.current_epoch)
            raise RunInterrupted(run_dir, ckpt) from None
        except BaseException as e:
            if trainer.is_global_zero and record.started:
                _update_run_json(run_dir, status="failed", error=(str(e).strip().splitlines() or [type(e).__name__])[0])
            if resume and not record.started and isinstance(e, RuntimeError) and "loading state_dict" in str(e):
                detail = " ".join(str(e).split())[:300]
                raise MMIBError(f"resume: the checkpoint '{resume}' does not fit this configuration of method "
                                f"'{c['method']['name']}' (resume with the configuration it was trained with): "
                                f"{detail}") from None
            raise
        elapsed = time.time() - t0
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.as_tensor(v).numel() == 1}
        if trainer.is_global_zero:
            _update_run_json(run_dir, train_seconds=elapsed, final_metrics=metrics, epochs=trainer.current_epoch,
                             global_step=trainer.global_step, status="finished",
                             finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
        method.eval()
        return TrainResult(method, dm, run_dir, trainer, metrics)
    except BaseException:
        # an attempt that failed before training started leaves no half-made folder behind (only what it created)
        if created and rank == 0 and not is_run_folder(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    finally:
        if lock is not None:
            lock.release()


@contextlib.contextmanager
def _one_line(what: str):
    """A setting that the data module, the method or Lightning's Trainer rejects (ValueError, TypeError, Lightning's
    MisconfigurationException) becomes one line naming the group (mmib's own errors pass unchanged)."""
    try:
        yield
    except MMIBError:
        raise
    except (ValueError, TypeError, IndexError) as e:
        raise MMIBError(f"{what}: {' '.join(str(e).split())[:300] or type(e).__name__}") from None
    except Exception as e:
        if type(e).__name__ != "MisconfigurationException":
            raise
        raise MMIBError(f"{what}: {' '.join(str(e).split())[:300]}") from None


@contextlib.contextmanager
def _sigint_to(interrupt: InterruptCallback, enabled: bool = True):
    """Route SIGINT to ``interrupt.request_stop`` while training (main thread, one process only)."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, interrupt.request_stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
