"""Streaming end to end: a generic-format folder of memory-mapped .npy arrays trains with DataLoader workers."""

import json
import math

import numpy as np

from mmib.config import compose_config
from mmib.data.registry import build_dataset
from mmib.engine import train


def _write_folder(d, n=384, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 4))
    y = (z[:, 0] > 0).astype(np.int64) + (z[:, 1] > 0)
    d.mkdir()
    np.save(d / "left.npy", (z @ rng.normal(size=(4, 12)) + 0.3 * rng.normal(size=(n, 12))).astype(np.float32))
    np.save(d / "right.npy", (z @ rng.normal(size=(4, 6)) + 0.3 * rng.normal(size=(n, 6))).astype(np.float32))
    np.save(d / "y.npy", y)
    (d / "meta.json").write_text(json.dumps({"name": "streamed"}))


def test_memory_mapped_folder_trains_with_two_workers(tmp_path):
    folder = tmp_path / "data"
    _write_folder(folder)
    ds = build_dataset("generic", path=str(folder))
    assert isinstance(ds.x["left"], np.memmap) and isinstance(ds.x["right"], np.memmap), "read memory-mapped"
    cfg = compose_config(["method=clip", "data=generic", f"data.path={folder}", "data.num_workers=2",
                          "data.batch_size=64", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
                          f"run_dir={tmp_path / 'runs'}", "name=stream"])
    res = train(cfg)
    assert res.datamodule.train_dataloader().num_workers == 2
    assert res.trainer.current_epoch == 1 and res.trainer.global_step > 0
    losses = {k: v for k, v in res.metrics.items() if k.endswith("loss") or k.endswith("loss_epoch")}
    assert losses and all(math.isfinite(v) for v in losses.values()), res.metrics
    assert (res.run_dir / "checkpoints" / "last.ckpt").is_file()
    run = json.loads((res.run_dir / "run.json").read_text())
    assert run["finished"] and run["data"]["name"] == "streamed"
