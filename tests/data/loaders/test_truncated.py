"""Corrupted or truncated files (a download cut short, a disk full) stop with an error that names the file,
never with a raw zipfile/pickle/HDF5 traceback or, worse, a silently shorter data set."""

import pickle

import numpy as np
import pytest

from mmib.data.dataset import DataValidationError
from mmib.data.loaders._common import load_pickle, open_h5
from mmib.data.registry import build_dataset


def _arrays(n=40):
    rng = np.random.default_rng(0)
    return {"a": rng.normal(size=(n, 4)).astype(np.float32), "b": rng.normal(size=(n, 3)).astype(np.float32),
            "y": np.arange(n) % 2}


def _truncate(path, keep=0.5):
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])


@pytest.mark.parametrize("compressed", [False, True])
def test_truncated_npz(tmp_path, compressed):
    f = tmp_path / "d.npz"
    (np.savez_compressed if compressed else np.savez)(f, **_arrays())
    build_dataset("generic", path=str(f))  # whole file: fine
    _truncate(f)
    with pytest.raises(DataValidationError, match=r"d\.npz: not a readable \.npz"):
        build_dataset("generic", path=str(f))


def test_truncated_npy_in_a_folder(tmp_path):
    for k, v in _arrays().items():
        np.save(tmp_path / f"{k}.npy", v)
    _truncate(tmp_path / "a.npy")
    with pytest.raises(DataValidationError, match=r"a\.npy: not a readable \.npy"):
        build_dataset("generic", path=str(tmp_path))


def test_truncated_pickle(tmp_path):
    f = tmp_path / "mosi.pkl"
    f.write_bytes(pickle.dumps({"train": {"vision": np.zeros((3, 2, 2))}, "valid": {}, "test": {}}))
    _truncate(f, 0.6)
    with pytest.raises(DataValidationError, match=r"mosi\.pkl: not a readable pickle"):
        load_pickle(f)


def test_truncated_hdf5(tmp_path):
    h5py = pytest.importorskip("h5py")
    f = tmp_path / "episode.h5"
    with h5py.File(f, "w") as h:
        h.create_dataset("force", data=np.zeros((1000, 6)))
    _truncate(f, 0.3)
    with pytest.raises(DataValidationError, match=r"episode\.h5: not a readable HDF5 file"):
        open_h5(f, "a test")
