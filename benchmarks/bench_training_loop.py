"""Share of a training step spent outside the model's forward/backward, for the demo configuration
(pairwise CLIP, 6-view UCI digits, batch 64), and data-loading throughput of memory-mapped vs in-memory data.

Measured side by side in one run:
  (a) a Lightning ``fit`` (no validation, no checkpointing, no progress bar) — steady-state time per optimizer step
      (epochs after the first, from each epoch's start to its end: data loading, hooks and logging included, the
      one-off fit set-up not);
  (b) the same model's forward + backward + optimizer step on pre-collated batches in a bare loop.
overhead share = 1 − b / a   (data loading, loss bookkeeping, logging, hooks). Target: below 15 %.
(a) and (b) are measured alternately, ``--repeats`` times each after one warm-up of each, and the medians are
compared, so that a load change on the machine hits both sides alike.

Data loading: samples/s of the same arrays in memory and memory-mapped (``.npy``), with 0 and 2 DataLoader workers.

Usage: python benchmarks/bench_training_loop.py [--quick] [--repeats R] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch

from mmib.config import compose_config
from mmib.data.dataset import MultimodalDataset
from mmib.runs import build_datamodule, build_method_from_config


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


def throughput(ds: MultimodalDataset, batch_size: int = 64, passes: int = 3, num_workers: int = 0) -> float:
    from torch.utils.data import DataLoader

    from mmib.data.datamodule import EpochShuffledBatchSampler
    from mmib.data.dataset import collate_multimodal

    sampler = EpochShuffledBatchSampler(len(ds), batch_size, True, 0)
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=collate_multimodal, num_workers=num_workers,
                        persistent_workers=num_workers > 0)
    for _ in loader:  # start the workers (and fill the page cache) before timing
        break
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
    ap.add_argument("--repeats", type=int, default=None, help="alternating (a)/(b) measurements (default 5, quick 2)")
    ap.add_argument("--out", type=Path, default=None, help="also write the printed table to this file")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    epochs = 3 if args.quick else 6
    repeats = args.repeats or (2 if args.quick else 5)
    cfg = compose_config(["method=clip", "data=mfeat", "trainer.enable_progress_bar=false"])
    dm = build_datamodule(cfg)
    L.seed_everything(0, verbose=False)
    method = build_method_from_config(cfg, dm.spec)
    batches = list(dm.train_dataloader())
    # warm-up of both sides (imports, allocator, first-call costs)
    lightning_seconds_per_step(cfg, 1)
    bare_loop_seconds_per_step(method, batches, 1)
    a_runs, b_runs = [], []
    for _ in range(repeats):
        a_runs.append(lightning_seconds_per_step(cfg, epochs))
        b_runs.append(bare_loop_seconds_per_step(method, batches, epochs - 1))
    a, b = statistics.median(a_runs), statistics.median(b_runs)
    lines = [f"Training-loop overhead, demo configuration (clip, mfeat 6 views, batch 64), CPU threads: "
             f"{torch.get_num_threads()}; median of {repeats} alternating measurements, {epochs} epochs each",
             f"{'':34}{'ms/step':>10}{'min':>9}{'max':>9}",
             f"{'Lightning fit (a)':34}{a * 1e3:>10.2f}{min(a_runs) * 1e3:>9.2f}{max(a_runs) * 1e3:>9.2f}",
             f"{'bare forward+backward+step (b)':34}{b * 1e3:>10.2f}{min(b_runs) * 1e3:>9.2f}"
             f"{max(b_runs) * 1e3:>9.2f}",
             f"overhead share 1 - b/a = {100 * (1 - b / a):.1f} %   (target < 15 %)"]
    print("\n".join(lines), flush=True)

    # streaming: memory-mapped vs in-memory copy of the same arrays, without and with DataLoader workers
    ds = dm.dataset
    with tempfile.TemporaryDirectory() as d:
        arrays = {}
        for m in ds.spec.modality_names:
            path = Path(d) / f"{m}.npy"
            np.save(path, ds.x[m].numpy())
            arrays[m] = np.load(path, mmap_mode="r")
        mm = MultimodalDataset(ds.spec, arrays, y=ds.y.numpy())
        mem = MultimodalDataset(ds.spec, {m: ds.x[m].numpy() for m in ds.spec.modality_names}, y=ds.y.numpy())
        rows = []
        for workers in (0, 2):
            t_mem, t_mm = throughput(mem, num_workers=workers), throughput(mm, num_workers=workers)
            rows.append(f"{workers:>8}{t_mem:>14,.0f}{t_mm:>16,.0f}{t_mm / t_mem:>10.2f}")
    table = ["", "Data loading (samples/s, batch 64, 3 passes)",
             f"{'workers':>8}{'in-memory':>14}{'memory-mapped':>16}{'ratio':>10}", *rows]
    print("\n".join(table))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines + table) + "\n")


if __name__ == "__main__":
    main()
