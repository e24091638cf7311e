"""Runs are never overwritten or mixed, Ctrl-C loses nothing, and no checkpoint or model file can run code.

The run-folder rule (``mmib.engine.train``): a folder holding ``config.yaml`` or ``checkpoints/`` is a run; training
into it needs ``resume=`` or ``overwrite=true`` (which moves the old run aside); a lock on the name stops a second
concurrent run; names cannot leave ``run_dir``.
"""

from __future__ import annotations

import hashlib
import io
import os
import signal
import zipfile
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

import mmib
from mmib.cli import main
from mmib.config import compose_config
from mmib.engine import RunInterrupted, lock_run, train
from mmib.errors import MMIBError
from mmib.methods.registry import load_method, read_checkpoint

BASE = ["data.views=[0,5]", "trainer.enable_progress_bar=false", "data.batch_size=128", "seed=3"]


def _cfg(tmp_path, *extra):
    return compose_config([*BASE, f"run_dir={tmp_path}", *extra])


def _snapshot(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (what must not change)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.name.endswith(".lock")}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 1-epoch run (module-wide; tests copy it before changing anything)."""
    root = tmp_path_factory.mktemp("runs")
    res = train(_cfg(root, "name=done", "trainer.max_epochs=1"))
    return res.run_dir


def _copy_run(src: Path, dst_root: Path, name: str = "done") -> Path:
    import shutil

    dst = dst_root / name
    shutil.copytree(src, dst)
    return dst


# --------------------------------------------------------------------------- run-folder rule


def test_training_again_into_a_run_stops_and_changes_nothing(finished, tmp_path, capsys):
    run = _copy_run(finished, tmp_path)
    before = _snapshot(tmp_path)
    code = main(["train", *BASE, f"run_dir={tmp_path}", "name=done", "trainer.max_epochs=2"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "already holds a run" in err and "resume=last" in err and "name=" in err and "overwrite=true" in err
    assert _snapshot(tmp_path) == before
    assert not (run / "checkpoints" / "last-v1.ckpt").exists()


def test_overwrite_moves_the_old_run_aside(finished, tmp_path):
    run = _copy_run(finished, tmp_path)
    old = _snapshot(run)
    res = train(_cfg(tmp_path, "name=done", "trainer.max_epochs=1", "overwrite=true", "seed=4"))
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("done.replaced-")]
    assert len(aside) == 1 and _snapshot(aside[0]) == old  # nothing deleted
    assert res.run_dir == run and (run / "checkpoints" / "last.ckpt").is_file()
    assert "seed: 4" in (run / "config.yaml").read_text()


def test_a_failing_second_attempt_leaves_the_finished_run_untouched(finished, tmp_path, capsys):
    _copy_run(finished, tmp_path)
    before = _snapshot(tmp_path)
    # resuming with a data configuration that fails while the data module is built
    code = main(["train", *BASE[1:], "data.views=[0,9]", f"run_dir={tmp_path}", "name=done", "resume=last",
                 "trainer.max_epochs=2"])
    err = capsys.readouterr().err
    assert code == 2 and ("data.views" in err or "view index 9" in err), err
    # resuming with a method whose weights do not fit the checkpoint: fails while Lightning restores it
    with pytest.raises(MMIBError, match="does not fit this configuration of method 'clip'") as e:
        train(_cfg(tmp_path, "name=done", "resume=last", "trainer.max_epochs=2", "method.embed_dim=64"))
    assert "\n" not in str(e.value)
    assert _snapshot(tmp_path) == before


def test_a_run_that_fails_before_it_starts_leaves_no_folder(tmp_path, capsys):
    code = main(["train", *BASE[1:], "data.views=[0,9]", f"run_dir={tmp_path}", "name=never"])
    assert code == 2
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("name", ["../x", "a/b", "..", ".hidden", "/abs"])
def test_name_cannot_leave_run_dir(tmp_path, capsys, name):
    root = tmp_path / "runs"
    code = main(["train", *BASE, f"run_dir={root}", f"name='{name}'", "trainer.max_epochs=1"])
    err = capsys.readouterr().err
    assert code == 2 and "a run name must be one folder name" in err and err.count("\n") == 1
    assert list(tmp_path.rglob("config.yaml")) == [] and not (tmp_path / "x").exists()


def test_a_second_concurrent_run_with_the_same_name_fails_fast(tmp_path, capsys):
    lock = lock_run(tmp_path / "busy")  # what a first run holds while it trains (another process in real life)
    try:
        code = main(["train", *BASE, f"run_dir={tmp_path}", "name=busy", "trainer.max_epochs=1"])
    finally:
        lock.release()
    err = capsys.readouterr().err
    assert code == 2 and "is being written by another process" in err
    assert not (tmp_path / "busy").exists()


def test_two_processes_started_at_once_one_wins(tmp_path):
    """Two real `mmib train` processes with the same name: exactly one trains, the other exits 2 at once."""
    import subprocess
    import sys

    argv = [sys.executable, "-m", "mmib.cli", "train", *BASE, f"run_dir={tmp_path}", "name=twin",
            "trainer.max_epochs=2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], [o[1][-500:] for o in outs]
    loser = next(o for p, o in zip(procs, outs) if p.returncode == 2)[1]
    assert "being written by another process" in loser or "already holds a run" in loser
    assert sorted(p.name for p in (tmp_path / "twin" / "checkpoints").iterdir()) == ["epoch001.ckpt", "last.ckpt"]


# --------------------------------------------------------------------------- Ctrl-C


class _SigintAt(L.Callback):
    """Sends this process a real SIGINT (what Ctrl-C does) when the given step starts."""

    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


class _RaiseAt(L.Callback):
    def __init__(self, step: int):
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            raise KeyboardInterrupt


def _params(method):
    return [p.detach().clone() for p in method.parameters()]


def test_ctrl_c_saves_exits_130_and_resume_is_bit_identical(tmp_path, capsys, monkeypatch):
    import mmib.engine as engine

    full = train(_cfg(tmp_path, "name=full", "trainer.max_epochs=2"))
    steps = full.trainer.global_step
    kill_at = steps // 2 + 1  # mid second epoch
    make = engine.make_trainer
    monkeypatch.setattr(engine, "make_trainer", lambda t, d, cbs=None, **kw: make(t, d, [*(cbs or []),
                                                                                       _SigintAt(kill_at)], **kw))
    code = main(["train", *BASE, f"run_dir={tmp_path}", "name=cut", "trainer.max_epochs=2"])
    assert code == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "mmib: interrupted (resume with resume=last)"
    ck = read_checkpoint(tmp_path / "cut" / "checkpoints" / "last.ckpt")
    assert ck["global_step"] == kill_at + 1  # saved at the end of the batch during which Ctrl-C came
    monkeypatch.setattr(engine, "make_trainer", make)
    assert main(["train", *BASE, f"run_dir={tmp_path}", "name=cut", "trainer.max_epochs=2", "resume=last"]) == 0
    resumed = load_method(str(tmp_path / "cut" / "checkpoints" / "last.ckpt"))
    for p, q in zip(_params(full.method), _params(resumed)):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


def test_keyboard_interrupt_between_batches_is_checkpointed_and_resumes_identically(tmp_path):
    full = train(_cfg(tmp_path, "name=full", "trainer.max_epochs=2"))
    step = full.trainer.global_step // 2 + 2
    with pytest.raises(RunInterrupted) as e:
        train(_cfg(tmp_path, "name=cut", "trainer.max_epochs=2"), callbacks=[_RaiseAt(step)])
    assert e.value.checkpoint is not None and read_checkpoint(e.value.checkpoint)["global_step"] == step
    import json

    assert json.loads((tmp_path / "cut" / "run.json").read_text())["status"] == "interrupted"
    res = train(_cfg(tmp_path, "name=cut", "trainer.max_epochs=2", "resume=last"))
    assert res.trainer.global_step == full.trainer.global_step
    for p, q in zip(_params(full.method), _params(res.method)):
        torch.testing.assert_close(p, q, rtol=0, atol=0)


# --------------------------------------------------------------------------- integrity and malicious files


def _flip_tensor_byte(path: Path) -> None:
    """Flip one byte inside the largest tensor's storage of a torch zip checkpoint (the archive stays readable)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    # local header: 30 bytes + name + extra, then the stored (uncompressed) bytes
    name_len = int.from_bytes(data[info.header_offset + 26: info.header_offset + 28], "little")
    extra_len = int.from_bytes(data[info.header_offset + 28: info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len
    data[start + info.file_size // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_flipped_byte_in_a_tensor_is_detected_everywhere(finished, tmp_path, capsys, snapshot):
    run = _copy_run(finished, tmp_path)
    last = run / "checkpoints" / "last.ckpt"
    read_checkpoint(last)  # intact: loads
    _flip_tensor_byte(last)
    torch.load(last, weights_only=True)  # the archive itself still reads: only the digest can tell
    before = snapshot(tmp_path)
    with pytest.raises(MMIBError, match="does not match its digest"):
        load_method(str(last))
    assert main(["eval", str(run), "--protocols", "probe", "--probe", "linear"]) == 2
    assert "does not match its digest" in capsys.readouterr().err
    assert main(["train", *BASE, f"run_dir={tmp_path}", "name=done", "resume=last", "trainer.max_epochs=2"]) == 2
    assert "does not match its digest" in capsys.readouterr().err
    assert snapshot(tmp_path) == before  # the run (and its corrupted checkpoint) untouched, nothing written


class _Payload:
    def __init__(self, target: Path):
        self.target = str(target)

    def __reduce__(self):
        return (Path.touch, (Path(self.target),))


def test_malicious_checkpoint_never_runs(finished, tmp_path, capsys):
    target = tmp_path / "PWNED"
    run = _copy_run(finished, tmp_path)
    ck = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    ck["hyper_parameters"]["payload"] = _Payload(target)
    bad = run / "checkpoints" / "last.ckpt"
    torch.save(ck, bad)
    with pytest.raises(MMIBError, match="refused to load"):
        load_method(str(bad))
    assert main(["eval", str(run), "--protocols", "probe"]) == 2
    assert main(["train", *BASE, f"run_dir={tmp_path}", "name=done", "resume=last", "trainer.max_epochs=2"]) == 2
    assert main(["train", *BASE, f"run_dir={tmp_path}", "name=other", f"resume={bad}", "trainer.max_epochs=2"]) == 2
    errs = capsys.readouterr().err.strip().splitlines()
    assert len(errs) == 3 and all("refused to load" in e for e in errs)
    model_file = tmp_path / "model.pt"
    torch.save({"method_name": "clip", "x": _Payload(target)}, model_file)
    with pytest.raises(MMIBError, match="refused to load"):
        mmib.MultimodalModel.load(model_file)
    assert not target.exists()


# --------------------------------------------------------------------------- the API's model files


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(160, 3))
    X = {"a": z @ rng.normal(size=(3, 10)), "b": np.tanh(z @ rng.normal(size=(3, 6)))}
    m = mmib.MultimodalModel("clip", max_epochs=1, batch_size=32, progress=False,
                             run_dir=str(tmp_path_factory.mktemp("api")))
    return m.fit(X, (z[:, 0] > 0).astype(int)), X


def test_api_fit_twice_replaces_its_own_run_only(fitted):
    m, X = fitted
    first = m.run_dir_
    m.fit(X)
    assert m.run_dir_ == first
    aside = [p for p in first.parent.iterdir() if p.name.startswith(first.name + ".replaced-")]
    assert len(aside) == 1  # moved aside, not deleted
    other = mmib.MultimodalModel("clip", max_epochs=1, batch_size=32, progress=False, run_dir=str(first.parent))
    with pytest.raises(MMIBError, match="already holds a run"):  # another model's run is never touched
        other.fit(X)


def test_api_model_file_round_trip_and_failures(fitted, tmp_path, snapshot):
    m, X = fitted
    path = tmp_path / "model.pt"
    m.save(path)
    assert path.read_bytes()[:2] not in (b"PK", b"\x80\x02")  # safetensors, not a pickle
    m2 = mmib.MultimodalModel.load(path)
    np.testing.assert_array_equal(m.transform(X), m2.transform(X))
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    (tmp_path / "flipped.pt").write_bytes(bytes(data))
    (tmp_path / "foreign.pt").write_bytes(b"")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "torchfile.pt")
    cases = {"flipped.pt": "does not match its digest", "foreign.pt": "not an mmib model file",
             "torchfile.pt": "not an mmib model file", ".": "is a folder", "missing.pt": "cannot read the model file"}
    before = snapshot(tmp_path, m.run_dir_)
    for name, msg in cases.items():
        with pytest.raises(MMIBError, match=msg) as e:
            mmib.MultimodalModel.load(tmp_path / name)
        assert "\n" not in str(e.value)
    assert snapshot(tmp_path, m.run_dir_) == before  # no file changed, none written


def test_api_model_file_of_an_older_mmib_still_loads_safely(fitted, tmp_path):
    m, X = fitted
    meth = m.method_
    torch.save({"overrides": m._overrides, "method_name": m.method_name, "hyper_parameters": dict(meth.hparams),
                "state_dict": meth.state_dict(), "spec": m.spec_.to_dict(), "normalization": m.normalization_},
               tmp_path / "old.pt")
    with pytest.warns(UserWarning, match="older mmib"):
        m2 = mmib.MultimodalModel.load(tmp_path / "old.pt")
    np.testing.assert_array_equal(m.transform(X), m2.transform(X))


def test_the_readme_train_lines_run_in_order_without_mixing_runs(tmp_path, capsys):
    """The README's first `mmib train` lines, in order: train, resume, a new name, overwrite — each does what its
    comment says (this sequence used to overwrite the first run's config and leave its weights in last.ckpt)."""
    import json
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    lines = [ln.split("#")[0].split("mmib train", 1)[1].split() for ln in readme.splitlines()
             if ln.startswith(".venv/bin/mmib train method=clip data=mfeat")]
    assert len(lines) == 4, lines
    fast = [f"run_dir={tmp_path}", "trainer.enable_progress_bar=false", "data.batch_size=256"]
    for argv in lines:
        argv = [re.sub(r"max_epochs=\d+", lambda m: f"max_epochs={int(m.group(0).split('=')[1]) // 4}", a)
                for a in argv]
        if not any("max_epochs" in a for a in argv):
            argv.append("trainer.max_epochs=1")
        assert main(["train", *argv, *fast]) == 0, capsys.readouterr().err
    run = tmp_path / "clip-mfeat-s0"
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "finished" and not meta.get("attempts")  # the overwrite started a fresh run
    aside = json.loads(next(tmp_path.glob("clip-mfeat-s0.replaced-*/run.json")).read_text())
    assert aside["status"] == "finished" and aside["epochs"] == 2 and len(aside["attempts"]) == 1  # trained, resumed
    assert (tmp_path / "clip-3views" / "checkpoints" / "last.ckpt").is_file()
    assert not list(tmp_path.rglob("last-v*.ckpt"))


def test_api_model_file_keeps_class_names(fitted, tmp_path):
    m, X = fitted
    y = np.where(X["a"][:, 0] > 0, "tap", "rest")
    named = mmib.MultimodalModel("clip", max_epochs=1, batch_size=32, progress=False).fit(X, y)
    named.save(tmp_path / "named.pt")
    back = mmib.MultimodalModel.load(tmp_path / "named.pt")
    assert list(back.classes_) == ["rest", "tap"]
    assert set(back.evaluate(X, y)) == set(named.evaluate(X, y))


# --------------------------------------------------------------------------- found by the audit


def test_resume_with_another_seed_or_data_setting_is_refused(finished, tmp_path, capsys):
    """A resumed run keeps its seed and data settings: another seed would re-draw the splits (test rows in training)."""
    _copy_run(finished, tmp_path)
    before = _snapshot(tmp_path)
    for extra in (["seed=4"], ["data.val_fraction=0.3"]):
        code = main(["train", *BASE, f"run_dir={tmp_path}", "name=done", "resume=last", "trainer.max_epochs=2", *extra])
        err = capsys.readouterr().err
        assert code == 2 and "was trained with other data settings" in err and err.count("\n") == 1, err
    assert _snapshot(tmp_path) == before


class _FailAtFitStart(L.Callback):
    def on_fit_start(self, trainer, pl_module):
        raise ValueError("set-up failed")


def test_a_resume_that_fails_during_set_up_leaves_the_run_untouched(finished, tmp_path):
    _copy_run(finished, tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(ValueError, match="set-up failed"):
        train(_cfg(tmp_path, "name=done", "resume=last", "trainer.max_epochs=2"), callbacks=[_FailAtFitStart()])
    assert _snapshot(tmp_path) == before


def test_eval_does_not_take_trust_pickle_from_a_run_folder(finished, tmp_path, capsys):
    """A run folder is data, not permission: data.trust_pickle in its config.yaml is ignored by `mmib eval`."""
    import pickle

    import yaml

    target = tmp_path / "PWNED"
    run = _copy_run(finished, tmp_path)
    (run / "data.pkl").write_bytes(pickle.dumps({"train": _Payload(target)}))
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["data"] = {"name": "mosi", "path": str(run / "data.pkl"), "trust_pickle": True}
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["eval", str(run), "--protocols", "probe"]) == 2
    assert "refused to unpickle" in capsys.readouterr().err and not target.exists()


def test_a_model_file_cannot_choose_where_fit_writes(fitted, tmp_path):
    from mmib.utils.modelfile import read_model_file, write_model_file

    m, X = fitted
    m.save(tmp_path / "m.pt")
    info, state, norm = read_model_file(tmp_path / "m.pt")
    victim = tmp_path / "victim" / "keep"
    (victim / "checkpoints").mkdir(parents=True)
    (victim / "config.yaml").write_text("precious: true\n")
    info["overrides"] += [f"run_dir={victim.parent}", "name=keep", "overwrite=true"]
    write_model_file(tmp_path / "evil.pt", info, state, norm)  # a valid digest: anyone can write one
    loaded = mmib.MultimodalModel.load(tmp_path / "evil.pt")
    loaded.fit(X)
    assert (victim / "config.yaml").read_text() == "precious: true\n"
    assert sorted(p.name for p in victim.parent.iterdir()) == ["keep"]
    assert victim.parent not in loaded.run_dir_.parents


def test_a_checkpoint_that_lost_its_digest_entry_is_corrupt(finished, tmp_path):
    from mmib.utils.checkpoint import DIGEST_KEY

    ck = torch.load(finished / "checkpoints" / "last.ckpt", weights_only=True)
    ck["mmib_digesT"] = ck.pop(DIGEST_KEY)  # what a flipped byte in the key's name does
    torch.save(ck, tmp_path / "renamed.ckpt")
    with pytest.raises(MMIBError, match="digest is missing"):
        read_checkpoint(tmp_path / "renamed.ckpt")


def test_data_check_trust_pickle_takes_only_true_or_false(tmp_path, capsys):
    for value in ("yes", "on", "1"):
        assert main(["data", "check", str(tmp_path / "x.pkl"), "--format", "mosi", "--option",
                     f"trust_pickle={value}"]) == 2
        assert "expected true or false" in capsys.readouterr().err


def test_eval_of_a_checkpoint_outside_a_run_folder_says_so(finished, tmp_path, capsys):
    import shutil

    lone = tmp_path / "legit.ckpt"
    shutil.copy(finished / "checkpoints" / "last.ckpt", lone)
    assert main(["eval", str(lone), "--protocols", "probe"]) == 2
    assert "is not inside a run folder" in capsys.readouterr().err
