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
    ck = torch.load(last, weights_only=False)
    assert ck["epoch"] == 1 and 0 < ck["global_step"] - steps_per_epoch < steps_per_epoch, "a mid-epoch checkpoint"
    resumed = train(compose_config([*OVERRIDES, f"run_dir={tmp_path}", "name=killed", "resume=last"]))
    assert resumed.trainer.global_step == full.trainer.global_step
    assert resumed.metrics["val/loss"] == full.metrics["val/loss"]
    assert resumed.metrics["train/loss_epoch"] == full.metrics["train/loss_epoch"]
    for p, q in zip(full.method.parameters(), resumed.method.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    meta = json.loads((tmp_path / "killed" / "run.json").read_text())
    assert meta["resumed_from"].endswith("last.ckpt")
