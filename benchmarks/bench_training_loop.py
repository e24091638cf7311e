"""Share of a training step spent outside the model's forward/backward, for the demo configuration
(pairwise CLIP, 6-view UCI digits, batch 64), and data-loading throughput of memory-mapped vs in-memory data.

Measured side by side in one run:
  (a) a Lightning ``fit`` (no validation, no checkpointing, no progress bar) — steady-state time per optimizer step
      (epochs after the first, from each epoch's start to its end: data loading, hooks and logging included, the
      one-off fit set-up not);
  (b) the same model's forward + backward + optimizer step on pre-collated batches in a bare loop.
overhead share = 1 − b / a   (data loading, loss bookkeeping, logging, hooks). Target: below 15 %.

Usage: python benchmarks/bench_training_loop.py [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch

from mmib.config import compose_config
from mmib.data.dataset import MultimodalDataset
from mmib.engine import build_datamodule, build_method_from_config


def bare_loop_seconds_per_step(method, batches, repeats: int) -> float:
    opt = method.configure_optimizers()
    method.train()
    t0 = time.perf_counter()
    for _ in range(repeats):
        for b in batches:
            opt.zero_grad(set_to_none=True)
            out = method.loss(b)
            out.loss.backward()
            opt.step()
    return (time.perf_counter() - t0) / (repeats * len(batches))


class _EpochTimer(L.Callback):
    """Wall time and optimizer steps of every training epoch (from its first batch to its end): the steady-state
    cost of a step — data loading, hooks, logging included; the one-off fit set-up excluded."""

    def __init__(self) -> None:
        self.epochs: list[tuple[float, int]] = []
        self._t0 = self._s0 = None

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._t0, self._s0 = time.perf_counter(), trainer.global_step

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.epochs.append((time.perf_counter() - self._t0, trainer.global_step - self._s0))


def lightning_seconds_per_step(cfg, epochs: int) -> float:
    """Steady-state seconds per step of a Lightning ``fit``, epochs after the first (which pays the warm-up)."""
    L.seed_everything(0, verbose=False)
    dm = build_datamodule(cfg)
    method = build_method_from_config(cfg, dm.spec)
    timer = _EpochTimer()
    with tempfile.TemporaryDirectory() as d:
        trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=L.pytorch.loggers.CSVLogger(d),
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                            limit_val_batches=0, log_every_n_steps=10, use_distributed_sampler=False,
                            callbacks=[timer])
        trainer.fit(method, datamodule=dm)
    steady = timer.epochs[1:] or timer.epochs
    return sum(t for t, _ in steady) / sum(n for _, n in steady)


def throughput(ds: MultimodalDataset, batch_size: int = 64, passes: int = 3) -> float:
    from torch.utils.data import DataLoader

    from mmib.data.datamodule import EpochShuffledBatchSampler
    from mmib.data.dataset import collate_multimodal

    sampler = EpochShuffledBatchSampler(len(ds), batch_size, True, 0)
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=collate_multimodal)
    n = 0
    t0 = time.perf_counter()
    for e in range(passes):
        sampler.set_epoch(e)
        for b in loader:
            n += len(b["index"])
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    epochs = 3 if args.quick else 6
    cfg = compose_config(["method=clip", "data=mfeat", "trainer.enable_progress_bar=false"])
    # warm-up (imports, allocator)
    lightning_seconds_per_step(cfg, 1)
    a = lightning_seconds_per_step(cfg, epochs)
    dm = build_datamodule(cfg)
    L.seed_everything(0, verbose=False)
    method = build_method_from_config(cfg, dm.spec)
    loader = dm.train_dataloader()
    batches = list(loader)
    b = bare_loop_seconds_per_step(method, batches, epochs - 1)
    print("Training-loop overhead, demo configuration (clip, mfeat 6 views, batch 64), CPU threads:",
          torch.get_num_threads())
    print(f"{'':34}{'ms/step':>10}")
    print(f"{'Lightning fit (a)':34}{a * 1e3:>10.2f}")
    print(f"{'bare forward+backward+step (b)':34}{b * 1e3:>10.2f}")
    print(f"overhead share 1 - b/a = {100 * (1 - b / a):.1f} %   (target < 15 %)")

    # streaming: memory-mapped vs in-memory copy of the same arrays
    ds = dm.dataset
    with tempfile.TemporaryDirectory() as d:
        arrays = {}
        for m in ds.spec.modality_names:
            path = Path(d) / f"{m}.npy"
            np.save(path, ds.x[m].numpy())
            arrays[m] = np.load(path, mmap_mode="r")
        mm = MultimodalDataset(ds.spec, arrays, y=ds.y.numpy())
        mem = MultimodalDataset(ds.spec, {m: ds.x[m].numpy() for m in ds.spec.modality_names}, y=ds.y.numpy())
        t_mem, t_mm = throughput(mem), throughput(mm)
    print(f"\nData loading (samples/s): in-memory {t_mem:,.0f}   memory-mapped {t_mm:,.0f}   "
          f"ratio mmap/in-memory {t_mm / t_mem:.2f}")


if __name__ == "__main__":
    main()
