"""Bad training settings are one-line named errors (exit code 2) found before training, with nothing written.

Every case calls the CLI in-process (``mmib.cli.main``) with a tiny config, and checks: exit code 2, one line
``mmib: error: ...`` naming the key and what was expected, no file of the run directory changed, no folder made.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
import torch

from mmib.cli import main

TINY = ["method=clip", "data=sim_align", "data.n_samples=128", "data.n_modalities=2", "data.modality_dim=8",
        "data.batch_size=32", "method.representation_dim=16", "method.embed_dim=8", "trainer.max_epochs=1",
        "trainer.enable_progress_bar=false"]


def _absent_gpu_accelerator() -> str | None:
    if not torch.cuda.is_available():
        return "gpu"
    if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        return "mps"
    return None


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A finished clip run on sim_align (the checkpoint the resume cases point at)."""
    root = tmp_path_factory.mktemp("runs")
    assert main(["train", *TINY, f"run_dir={root}", "name=done"]) == 0
    assert (root / "done" / "checkpoints" / "last.ckpt").is_file()
    return root / "done"


def _snapshot(root: Path) -> dict[str, str]:
    """Every path under ``root`` (folders too) with the SHA-256 of each file's bytes and its mtime."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        out[rel] = "dir" if p.is_dir() else f"{hashlib.sha256(p.read_bytes()).hexdigest()}:{p.stat().st_mtime_ns}"
    return out


@pytest.fixture
def run_dir(tmp_path, trained) -> Path:
    """A run directory that already holds a finished run (copied), so that a case cannot silently touch it."""
    d = tmp_path / "runs"
    d.mkdir()
    shutil.copytree(trained, d / "done")
    return d


def _expect_error(capsys, run_dir: Path, argv: list[str], *needles: str) -> str:
    before = _snapshot(run_dir)
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, f"exit code {code}; stderr: {err}"
    assert err.startswith("mmib: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, f"{n!r} not in {err!r}"
    assert _snapshot(run_dir) == before, "the run directory changed"
    return err


# (overrides, substrings the one-line message must hold: the key and what was expected)
CASES = {
    "devices_0": (["trainer.devices=0"], "trainer.devices", ">= 1", "got 0"),
    "devices_empty_list": (["trainer.devices=[]"], "trainer.devices", "list of device indices"),
    "seed_not_int": (["seed=abc"], "seed must be an integer", "'abc'"),
    "seed_negative": (["seed=-1"], "seed must be an integer in [0, 4294967295]", "-1"),
    "seed_float": (["seed=1.5"], "seed must be an integer", "1.5"),
    "precision": (["trainer.precision=fp33"], "trainer.precision", "'fp33'", "valid: ", "32-true", "bf16-mixed"),
    "accelerator_unknown": (["trainer.accelerator=gpuu"], "trainer.accelerator 'gpuu'", "did you mean 'gpu'",
                            "valid: auto, cpu"),
    "lr_negative": (["method.optim.lr=-1"], "method.optim.lr", "> 0", "got -1"),
    "lr_zero": (["method.optim.lr=0"], "method.optim.lr", "> 0", "got 0"),
    "lr_nan": (["method.optim.lr=nan"], "method.optim.lr", "finite", "nan"),
    "lr_inf": (["method.optim.lr=inf"], "method.optim.lr", "finite", "inf"),
    "lr_string": (["method.optim.lr=abc"], "method.optim.lr", "'abc'"),
    "temperature_zero": (["method.objective.temperature=0"], "method.objective.temperature", "> 0", "got 0"),
    "temperature_negative": (["method.objective.temperature=-0.5"], "method.objective.temperature", "-0.5"),
    "temperature_other_method": (["method=cross", "method.temperature=0"], "method.temperature", "> 0"),
    "max_epochs_0": (["trainer.max_epochs=0"], "trainer.max_epochs must be >= 1", "got 0"),
    "max_epochs_negative": (["trainer.max_epochs=-3"], "trainer.max_epochs must be >= 1", "got -3"),
    "max_epochs_endless": (["trainer.max_epochs=-1"], "trainer.max_epochs must be >= 1", "trainer.max_steps"),
    "max_steps_0": (["+trainer.max_steps=0"], "trainer.max_steps", ">= 1"),
    "checkpoint_every_0": (["trainer.checkpoint_every_n_epochs=0"], "trainer.checkpoint_every_n_epochs", ">= 1"),
    "limit_train_batches_0": (["trainer.limit_train_batches=0"], "trainer.limit_train_batches", "(0, 1]"),
    "unknown_trainer_key": (["+trainer.max_epoch=3"], "unknown config key 'trainer.max_epoch'",
                            "did you mean 'trainer.max_epochs'"),
    "engine_owned_trainer_key": (["+trainer.logger=false"], "trainer.logger is set by mmib itself"),
    "unknown_top_level_key": (["+seeed=3"], "unknown config key 'seeed'", "did you mean 'seed'"),
    "resume_missing": (["resume=last"], "resume: no checkpoint at", "last.ckpt"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_setting_is_a_named_error_before_anything_is_written(capsys, run_dir, case):
    overrides, *needles = CASES[case]
    _expect_error(capsys, run_dir, ["train", *TINY, *overrides, f"run_dir={run_dir}", "name=new"], *needles)
    assert not (run_dir / "new").exists()


def test_gpu_accelerator_without_such_a_device(capsys, run_dir):
    acc = _absent_gpu_accelerator()
    if acc is None:
        pytest.skip("this machine has both CUDA and MPS")
    _expect_error(capsys, run_dir, ["train", *TINY, f"trainer.accelerator={acc}", f"run_dir={run_dir}", "name=new"],
                  f"trainer.accelerator={acc}", "no", "available", "trainer.accelerator=cpu")
    assert not (run_dir / "new").exists()


def test_more_gpus_than_the_machine_has(capsys, run_dir):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    n = torch.cuda.device_count()
    _expect_error(capsys, run_dir, ["train", *TINY, "trainer.accelerator=cuda", f"trainer.devices={n + 1}",
                                    f"run_dir={run_dir}", "name=new"], f"trainer.devices={n + 1}", f"has {n} cuda")


def test_resume_from_another_method_s_checkpoint(capsys, run_dir):
    ckpt = run_dir / "done" / "checkpoints" / "last.ckpt"
    err = _expect_error(capsys, run_dir, ["train", *TINY, "method=clip_ib", f"resume={ckpt}", f"run_dir={run_dir}",
                                          "name=new"], "resume:", str(ckpt), "method 'clip'", "method 'clip_ib'")
    assert "data set 'sim_align'" in err
    assert not (run_dir / "new").exists()


def test_resume_from_another_data_set_s_checkpoint(capsys, run_dir):
    # the run folder (resume=<folder>): its config.yaml names the data set
    _expect_error(capsys, run_dir, ["train", *TINY[:1], "data=mfeat", "trainer.max_epochs=1",
                                    f"resume={run_dir / 'done'}", f"run_dir={run_dir}", "name=new"],
                  "data set 'sim_align'", "data set 'mfeat'", "method 'clip'")
    assert not (run_dir / "new").exists()


def test_resume_from_a_moved_checkpoint_compares_the_spec_name(capsys, run_dir, tmp_path):
    # a checkpoint away from its run folder: the data set name comes from the spec stored in the checkpoint
    loose = tmp_path / "loose.ckpt"
    shutil.copy(run_dir / "done" / "checkpoints" / "last.ckpt", loose)
    _expect_error(capsys, run_dir, ["train", *TINY[:1], "data=mfeat", "trainer.max_epochs=1", f"resume={loose}",
                                    f"run_dir={run_dir}", "name=new"], "data set 'sim_align'", "data set 'mfeat'")


def test_resume_of_the_same_method_and_data_passes_the_check(run_dir):
    from mmib.config import check_resume_compatible, compose_config, to_container
    from mmib.methods.registry import read_checkpoint

    ckpt = run_dir / "done" / "checkpoints" / "last.ckpt"
    c = to_container(compose_config([*TINY, f"resume={ckpt}", f"run_dir={run_dir}", "name=new"]))
    check_resume_compatible(c, read_checkpoint(ckpt), ckpt)  # no error


def test_run_dir_that_is_a_file(capsys, run_dir):
    f = run_dir / "done" / "run.json"
    _expect_error(capsys, run_dir, ["train", *TINY, f"run_dir={f}", "name=new"], f"run folder '{f / 'new'}'",
                  "is a file, not a folder")


def test_read_only_run_dir(capsys, run_dir, monkeypatch):
    """A read-only run directory: named before training. As root (permissions do not apply) the file system's
    answer is simulated by ``os.access``; as another user the folder is really made read-only."""
    ro = run_dir / "ro"
    ro.mkdir()
    if os.geteuid() == 0:
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == ro and mode & os.W_OK
                            else real(p, mode, **kw))
    else:
        ro.chmod(0o555)
    try:
        _expect_error(capsys, run_dir, ["train", *TINY, f"run_dir={ro}", "name=new"],
                      f"run folder '{ro / 'new'}' is not writable", f"'{ro}' is read-only")
    finally:
        ro.chmod(0o755)
    assert not (ro / "new").exists()


def test_read_only_existing_run_folder_on_resume(capsys, run_dir, monkeypatch):
    done = run_dir / "done"
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == done and mode & os.W_OK
                        else real(p, mode, **kw))
    _expect_error(capsys, run_dir, ["train", *TINY, "resume=last", f"run_dir={run_dir}", "name=done"],
                  f"run folder '{done}' is not writable")


def test_good_settings_still_pass_the_check(tmp_path):
    """The checks refuse only what is wrong: Lightning's other spellings and the packaged configs pass."""
    from mmib.config import check_train_config, compose_config, group_options, to_container

    for extra in (["trainer.devices=auto"], ["trainer.devices=-1"], ["trainer.precision=bf16-mixed"],
                  ["trainer.precision=32"], ["trainer.accelerator=cpu", "trainer.devices=2"],
                  ["trainer.max_epochs=-1", "+trainer.max_steps=10"], ["trainer.limit_train_batches=0.5"],
                  ["method.objective.learn_temperature=true"], ["seed=4294967295"]):
        check_train_config(to_container(compose_config([*TINY, *extra, f"run_dir={tmp_path}"])))
    for m in group_options("method"):
        check_train_config(to_container(compose_config([f"method={m}", f"run_dir={tmp_path}"])))
    assert list(tmp_path.iterdir()) == []
