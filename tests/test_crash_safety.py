"""A run killed with SIGKILL mid-epoch resumes from its last checkpoint and ends exactly like an uninterrupted run."""

import json
import subprocess
import sys
import textwrap

import torch

from mmib.config import compose_config
from mmib.engine import train

OVERRIDES = ["data.views=[0,2,5]", "trainer.enable_progress_bar=false", "data.batch_size=128",
             "trainer.max_epochs=3", "trainer.checkpoint_every_n_steps=3", "seed=7"]

KILLER = textwrap.dedent(
    """
    import os, signal, sys
    import lightning as L
    from mmib.config import compose_config
    from mmib.engine import train

    class KillAt(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if trainer.global_step == int(sys.argv[2]):  # step 13 done and checkpointed up to step 12
                os.kill(os.getpid(), signal.SIGKILL)

    train(compose_config(sys.argv[3:] + [f"run_dir={sys.argv[1]}", "name=killed"]), callbacks=[KillAt()])
    """
)


def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path):
    full = train(compose_config([*OVERRIDES, f"run_dir={tmp_path}", "name=full"]))
    steps_per_epoch = full.trainer.global_step // 3
    kill_step = steps_per_epoch + 3  # in the middle of the second epoch
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    r = subprocess.run([sys.executable, str(script), str(tmp_path), str(kill_step), *OVERRIDES],
                       capture_output=True, text=True)
    assert r.returncode == -9, r.stderr[-2000:]
    last = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    ck = torch.load(last, weights_only=True)
    assert ck["epoch"] == 1 and 0 < ck["global_step"] - steps_per_epoch < steps_per_epoch, "a mid-epoch checkpoint"
    resumed = train(compose_config([*OVERRIDES, f"run_dir={tmp_path}", "name=killed", "resume=last"]))
    assert resumed.trainer.global_step == full.trainer.global_step
    assert resumed.metrics["val/loss"] == full.metrics["val/loss"]
    assert resumed.metrics["train/loss_epoch"] == full.metrics["train/loss_epoch"]
    for p, q in zip(full.method.parameters(), resumed.method.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    meta = json.loads((tmp_path / "killed" / "run.json").read_text())
    assert meta["resumed_from"].endswith("last.ckpt")


def _truncated_copy(run_dir, name="trunc.ckpt", keep=0.5):
    src = run_dir / "checkpoints" / "last.ckpt"
    data = src.read_bytes()
    dst = run_dir / "checkpoints" / name
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def test_truncated_or_corrupted_checkpoint_is_one_line_error(tmp_path):
    import pytest

    from mmib.errors import MMIBError
    from mmib.methods.registry import load_method

    base = ["data.views=[0,5]", "trainer.enable_progress_bar=false", "data.batch_size=256", "trainer.max_epochs=1"]
    res = train(compose_config([*base, f"run_dir={tmp_path}", "name=t"]))
    trunc = _truncated_copy(res.run_dir)
    with pytest.raises(MMIBError, match=r"trunc\.ckpt': not a readable checkpoint \(truncated or corrupted\?\): ") as e:
        load_method(str(trunc))
    assert "\n" not in str(e.value)
    garbage = res.run_dir / "checkpoints" / "garbage.ckpt"
    garbage.write_bytes(b"\x80\x04not a pickle at all" * 10)
    with pytest.raises(MMIBError, match=r"garbage\.ckpt': not a readable checkpoint"):
        load_method(str(garbage))
    other = res.run_dir / "checkpoints" / "other.ckpt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(MMIBError, match=r"other\.ckpt': not an mmib checkpoint \(lacks method_name"):
        load_method(str(other))
    # resume= an explicit truncated file, and resume=last when last.ckpt itself is truncated
    with pytest.raises(MMIBError, match=r"trunc\.ckpt': not a readable checkpoint \(truncated or corrupted\?\)"):
        train(compose_config([*base, f"run_dir={tmp_path}", "name=t", f"resume={trunc}", "trainer.max_epochs=2"]))
    _truncated_copy(res.run_dir, "last.ckpt", keep=0.9)
    with pytest.raises(MMIBError, match=r"last\.ckpt': not a readable checkpoint \(truncated or corrupted\?\)"):
        train(compose_config([*base, f"run_dir={tmp_path}", "name=t", "resume=last", "trainer.max_epochs=2"]))
