"""`mmib data check`: check_file validates with the format's loader and summarizes; the network stays off."""

import json
import pickle

import numpy as np
import pytest

from mmib.cli import main
from mmib.data.dataset import DataValidationError
from mmib.data.loaders._common import DataFileNotFoundError
from mmib.data.loaders.check import FORMATS, check_file
from mmib.data.registry import dataset_names
from mmib.errors import UnknownNameError


def test_formats_are_registered_loaders():
    assert set(FORMATS) == {"mosi", "mosei", "urfunny", "mustard", "vision_touch", "mujoco_push", "wesad", "mimic",
                            "generic"}  # fmt: skip
    assert set(FORMATS) <= set(dataset_names())
    assert callable(FORMATS["mimic"])
    with pytest.raises(UnknownNameError, match="valid: generic"):
        check_file("x", "csv")


def test_summary_generic(tmp_path):
    p = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(p, eeg=rng.normal(size=(10, 2, 16)).astype(np.float32), y=np.arange(10) % 2,
             split=np.array(["train"] * 6 + ["val"] * 2 + ["test"] * 2),
             meta=json.dumps({"modalities": {"eeg": {"rate": 256}}}))  # fmt: skip
    out = check_file(str(p), "generic")
    assert "10 samples" in out and "eeg: signal (2, 16), 256 Hz, float32 (memory-mapped)" in out
    assert "classification, 2 classes (counts [5, 5])" in out
    assert "split (fixed): train 6, val 2, test 2" in out


def test_summary_mimic_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "im.pk"
    with open(p, "wb") as f:
        pickle.dump({"ep_tdata": rng.normal(size=(20, 24, 12)), "adm_features_all": rng.normal(size=(20, 5)),
                     "adm_labels_all": np.zeros((20, 6)), "y_icd9": np.ones((20, 20))}, f)  # fmt: skip
    out = check_file(str(p), "mimic", task="icd9_7")
    assert "timeseries: sequence (24, 12)" in out and "static: vector (5,)" in out
    assert "split (fixed): train 16, val 2, test 2" in out
    with pytest.raises(DataFileNotFoundError):
        check_file(str(tmp_path / "none.pk"), "mimic")
    with open(p, "wb") as f:
        pickle.dump({"ep_tdata": np.zeros((3, 24))}, f)
    with pytest.raises(DataValidationError, match=r"im\.pk: key 'ep_tdata': expected shape \(N, N, N\), got shape \(3, 24\)"):
        check_file(str(p), "mimic")



def _generic_npz(tmp_path):
    p = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(p, eeg=rng.normal(size=(10, 2, 16)).astype(np.float32), y=np.arange(10) % 2,
             split=np.array(["train"] * 6 + ["val"] * 2 + ["test"] * 2))  # fmt: skip
    return p


def test_cli_data_check_prints_the_summary(tmp_path, capsys):
    p = _generic_npz(tmp_path)
    assert main(["data", "check", str(p), "--format", "generic"]) == 0
    out, err = capsys.readouterr()
    assert out == check_file(str(p), "generic") + "\n" and err == ""
    assert "10 samples" in out and "split (fixed): train 6, val 2, test 2" in out
    # loader options pass through --option key=value (YAML values)
    assert main(["data", "check", str(p), "--format", "generic", "--option", "modalities=[eeg]",
                 "--option", "dataset_name=mine"]) == 0  # fmt: skip
    assert capsys.readouterr().out.startswith(f"data set 'mine' from {p}: 10 samples")


def _one_line_error(capsys) -> str:
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("mmib: error: ")
    return err


def test_cli_data_check_errors_are_one_line_with_rc_2(tmp_path, capsys):
    p = _generic_npz(tmp_path)
    assert main(["data", "check", str(p), "--format", "csv"]) == 2
    err = _one_line_error(capsys)
    assert "unknown" in err and "'csv'" in err and "valid: generic" in err
    assert main(["data", "check", str(p), "--format", "generic", "--option", "modalities"]) == 2
    assert "--option 'modalities' is not of the form key=value" in _one_line_error(capsys)
    bad = tmp_path / "im.pk"
    with open(bad, "wb") as f:
        pickle.dump({"ep_tdata": np.zeros((3, 24))}, f)
    assert main(["data", "check", str(bad), "--format", "mimic"]) == 2
    assert f"{bad}: key 'ep_tdata': expected shape (N, N, N), got shape (3, 24)" in _one_line_error(capsys)
    assert main(["data", "check", str(tmp_path / "none.pk"), "--format", "mimic"]) == 2
    assert "not found" in _one_line_error(capsys)
