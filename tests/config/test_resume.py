"""mmib.config.resume: is the run folder writable, which checkpoint ``resume=`` names, and does that checkpoint
continue the same run (method, data set, seed, data settings)."""

import os

import pytest
import yaml

import mmib.config.resume as resume
from mmib.config.resume import (
    check_resume_compatible,
    check_resume_keeps_split,
    check_run_folder_writable,
    resume_checkpoint_path,
)
from mmib.errors import MMIBError


def test_a_new_run_folder_in_a_writable_place_passes_and_is_not_made(tmp_path):
    run = tmp_path / "a" / "b" / "run"
    check_run_folder_writable(run)
    assert not (tmp_path / "a").exists()


def test_a_file_on_the_path_is_named(tmp_path):
    (tmp_path / "runs").write_text("not a folder")
    with pytest.raises(MMIBError, match=r"run folder '.*runs/x' cannot be created: '.*runs' is a file, not a folder"):
        check_run_folder_writable(tmp_path / "runs" / "x")
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    (run / "checkpoints").write_text("")
    with pytest.raises(MMIBError, match=r"'.*run/checkpoints' is read-only or not a folder"):
        check_run_folder_writable(run)


def test_read_only_folders_are_named(tmp_path, monkeypatch):
    # os.access decides (root can write anywhere, so the permission is faked)
    ro = {tmp_path / "ro", tmp_path / "run" / "logs"}
    real = os.access
    monkeypatch.setattr(resume.os, "access", lambda p, mode: False if type(tmp_path)(p) in ro else real(p, mode))
    (tmp_path / "ro").mkdir()
    with pytest.raises(MMIBError, match=r"run folder '.*ro/new/x' is not writable \(its folder '.*ro' is read-only\)"):
        check_run_folder_writable(tmp_path / "ro" / "new" / "x")
    (tmp_path / "run" / "logs").mkdir(parents=True)
    with pytest.raises(MMIBError, match=r"run folder '.*run' is not writable: '.*run/logs' is read-only"):
        check_run_folder_writable(tmp_path / "run")


def test_resume_names_last_a_run_folder_or_a_file(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    with pytest.raises(MMIBError, match=r"resume: no checkpoint at '.*run/checkpoints/last.ckpt' \(give a .ckpt "
                                        r"file, a run folder, or 'last'\)"):
        resume_checkpoint_path("last", run)
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(b"x")
    other = run / "checkpoints" / "epoch=1.ckpt"
    other.write_bytes(b"x")
    assert resume_checkpoint_path("last", run) == last
    assert resume_checkpoint_path(str(run), tmp_path / "elsewhere") == last
    assert resume_checkpoint_path(str(other), tmp_path / "elsewhere") == other
    with pytest.raises(MMIBError, match="no checkpoint at '.*nope.ckpt'"):
        resume_checkpoint_path(str(tmp_path / "nope.ckpt"), run)


def _run_with_config(tmp_path, seed=0, data=None):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    ckpt = run / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(b"x")
    data = data or {"name": "mfeat", "views": [0, 2], "batch_size": 64, "num_workers": 0}
    (run / "config.yaml").write_text(yaml.safe_dump({"seed": seed, "method": {"name": "clip"}, "data": data}))
    return ckpt


def test_resume_keeps_the_seed_and_the_data_settings(tmp_path):
    ckpt = _run_with_config(tmp_path)
    same = {"seed": 0, "data": {"name": "mfeat", "views": [0, 2], "batch_size": 64, "num_workers": 4,
                                "pin_memory": True, "new_default": 1}}
    check_resume_keeps_split(same, ckpt)  # loader settings, and keys only one side has, do not change the splits
    with pytest.raises(MMIBError, match=r"resume: '.*last.ckpt' was trained with other data settings \(seed 0 -> 1; "
                                        r"data.batch_size 64 -> 32; data.views \[0, 2\] -> \[0, 1\]\); a resumed run "
                                        r"keeps its seed"):
        check_resume_keeps_split({"seed": 1, "data": {**same["data"], "batch_size": 32, "views": [0, 1]}}, ckpt)
    loose = tmp_path / "loose.ckpt"
    loose.write_bytes(b"x")
    check_resume_keeps_split({"seed": 9, "data": {}}, loose)  # outside a run folder: nothing to compare with


def test_resume_compatible_compares_the_method_and_the_data_set(tmp_path):
    c = {"method": {"name": "clip"}, "data": {"name": "mfeat"}}
    with pytest.raises(MMIBError, match=r"'.*x.ckpt' is not an mmib checkpoint \(no hyper_parameters.method_name\)"):
        check_resume_compatible(c, {"state_dict": {}}, tmp_path / "x.ckpt")
    ckpt = _run_with_config(tmp_path, data={"name": "sim_align"})
    hp = {"hyper_parameters": {"method_name": "clip", "spec": {"name": "mfeat"}}}
    # the run folder's config.yaml names the data set (before the spec)
    with pytest.raises(MMIBError, match=r"checkpoint '.*last.ckpt' was trained with method 'clip' on data set "
                                        r"'sim_align', this config trains method 'clip' on data set 'mfeat'"):
        check_resume_compatible(c, hp, ckpt)
    check_resume_compatible({**c, "data": {"name": "sim_align"}}, hp, ckpt)
    loose = tmp_path / "loose.ckpt"
    check_resume_compatible(c, hp, loose)  # no config.yaml: the spec's registered name
    with pytest.raises(MMIBError, match="trained with method 'comm' on data set 'mfeat', this config trains method "
                                        "'clip'"):
        check_resume_compatible(c, {"hyper_parameters": {"method_name": "comm", "spec": {"name": "mfeat"}}}, loose)
    with pytest.raises(MMIBError, match="on data set 'sim_align', this config"):
        check_resume_compatible(c, {"hyper_parameters": {"method_name": "clip", "spec": {"name": "sim_align"}}}, loose)
    # a spec named after a file (the generic loader) is not a registered data set: only the method is compared
    check_resume_compatible(c, {"hyper_parameters": {"method_name": "clip", "spec": {"name": "my_data.npz"}}}, loose)
    with pytest.raises(MMIBError, match="trained with method 'comm', this config"):
        check_resume_compatible(c, {"hyper_parameters": {"method_name": "comm", "spec": {"name": "my.npz"}}}, loose)
