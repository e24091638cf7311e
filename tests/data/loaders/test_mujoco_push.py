"""MuJoCo Push hdf5 trajectories (fannypack layout): windows, modalities, target, fixed splits, train-fitted norm."""

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from mmib.data.datamodule import MultimodalDataModule  # noqa: E402
from mmib.data.dataset import DataValidationError  # noqa: E402
from mmib.data.loaders._common import DataFileNotFoundError  # noqa: E402
from mmib.data.loaders.mujoco_push import PUSH_FILES, load_mujoco_push  # noqa: E402

HIST = 4


def _traj(rng, t, offset):
    return {
        "Cylinder0_pos": (np.arange(t * 3, dtype=np.float32).reshape(t, 3) + offset),
        "eef_pos": rng.normal(size=(t, 3)).astype(np.float32) + offset,
        "force": rng.normal(size=(t, 6)).astype(np.float32),
        "contact": (rng.random(t) > 0.5).astype(np.float32),
        "image": rng.random((t, 6, 6)).astype(np.float32),
        "object-state": rng.normal(size=(t, 14)).astype(np.float32),
    }


def _write(path, trajs, **override):
    with h5py.File(path, "w") as f:
        for i, tr in enumerate(trajs):
            g = f.create_group(f"trajectory{i}")
            for k, v in {**tr, **override}.items():
                if v is not None:
                    g.create_dataset(k, data=v, compression="gzip")  # as fannypack writes them


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    d = tmp_path / "mujoco_push"
    d.mkdir()
    data = {}
    for s, n, off in (("train", 3, 0.0), ("val", 1, 10.0), ("test", 2, 20.0)):
        data[s] = [_traj(rng, 10 + i, off) for i in range(n)]
        _write(d / PUSH_FILES[s], data[s])
    return d, data


def test_windows_modalities_target(folder):
    d, data = folder
    ds = load_mujoco_push(path=str(d), history=HIST, stride=2)
    assert ds.spec.modality("image").shape == (HIST, 6, 6)
    assert ds.spec.modality("force").shape == (6, HIST) and ds.spec.modality("proprio").shape == (7, HIST)
    assert ds.spec.task == "regression" and ds.spec.target_dim == 2
    # trajectory of T steps: window ends HIST-1, HIST+1, ... <= T-2
    counts = {s: sum(len(range(HIST - 1, len(tr["image"]) - 1, 2)) for tr in data[s]) for s in data}
    assert [int((ds.split == s).sum()) for s in ("train", "val", "test")] == [counts[s] for s in ("train", "val", "test")]
    tr = data["train"][0]
    end = HIST - 1 + 2  # second window of the first trajectory
    np.testing.assert_allclose(ds.x["image"][1].numpy(), tr["image"][end - HIST + 1 : end + 1])
    np.testing.assert_allclose(ds.x["force"][1].numpy(), tr["force"][end - HIST + 1 : end + 1].T)
    np.testing.assert_allclose(ds.y[1].numpy(), tr["Cylinder0_pos"][end + 1, :2])
    eef = tr["eef_pos"]
    prev = np.vstack([eef[:1], eef[:-1]])
    controls = np.hstack([prev, eef - prev, tr["contact"][:, None]])
    np.testing.assert_allclose(ds.x["proprio"][1].numpy(), controls[end - HIST + 1 : end + 1].T, rtol=1e-6)
    assert len(set(ds.groups)) == 6


def test_normalization_fitted_on_train_only(folder):
    d, _ = folder
    ds = load_mujoco_push(path=str(d), history=HIST, stride=1)
    dm = MultimodalDataModule(ds, batch_size=4, standardize=True)
    tr = dm.indices["train"]
    assert (ds.split[tr] == "train").all()
    mean, _ = ds.normalization["proprio"]
    raw = ds.x["proprio"][tr].numpy()
    np.testing.assert_allclose(mean.numpy().reshape(-1), raw.mean(axis=(0, 2)), rtol=1e-4, atol=1e-5)


def test_modalities_subset_and_cache(folder, tmp_path):
    d, _ = folder
    ds = load_mujoco_push(path=str(d), history=HIST, modalities=["image", "force"], cache_dir=str(tmp_path / "c"))
    assert ds.spec.modality_names == ("image", "force")
    assert isinstance(ds.x["image"], np.memmap)


def test_malformed_and_missing(folder, tmp_path):
    d, data = folder
    _write(d / PUSH_FILES["val"], data["val"], force=np.zeros((10, 5), np.float32))
    with pytest.raises(DataValidationError, match=r"gentle_push_10\.hdf5: key 'trajectory0/force': expected shape \(10, 6\)"):
        load_mujoco_push(path=str(d), history=HIST)
    _write(d / PUSH_FILES["val"], data["val"], eef_pos=None)
    with pytest.raises(DataValidationError, match=r"missing key 'trajectory0/eef_pos'"):
        load_mujoco_push(path=str(d), history=HIST)
    _write(d / PUSH_FILES["val"], data["val"], image=np.zeros((10, 6, 6, 3), np.float32))
    with pytest.raises(DataValidationError, match=r"trajectory0/image': expected shape \(T, H, W\)"):
        load_mujoco_push(path=str(d), history=HIST)
    with h5py.File(d / PUSH_FILES["val"], "w") as f:
        f.create_dataset("something", data=np.zeros(3))
    with pytest.raises(DataValidationError, match=r"no trajectory groups"):
        load_mujoco_push(path=str(d), history=HIST)
    (d / PUSH_FILES["test"]).unlink()
    with pytest.raises(DataFileNotFoundError, match=r"gentle_push_300\.hdf5"):
        load_mujoco_push(path=str(d), history=HIST)
    with pytest.raises(DataValidationError, match="files"):
        load_mujoco_push(path=str(d), files={"training": "x.hdf5"})


def test_wrong_type(folder):
    d, data = folder
    val = d / PUSH_FILES["val"]
    _write(val, data["val"], force=np.full((10, 6), b"f"))  # h5py stores a string array as bytes
    with pytest.raises(DataValidationError, match=r"gentle_push_10\.hdf5: key 'trajectory0/force': expected a numeric "
                       r"array of shape \(10, 6\), got ndarray of shape \(10, 6\) and dtype \|S1"):
        load_mujoco_push(path=str(d), history=HIST)
    _write(val, data["val"], image=np.zeros((10, 6, 6), np.complex64))
    with pytest.raises(DataValidationError, match=r"key 'trajectory0/image': expected a numeric array.*dtype complex64"):
        load_mujoco_push(path=str(d), history=HIST)
    _write(val, data["val"], force=None)
    with h5py.File(val, "a") as f:  # a group where the force array belongs
        f["trajectory0"].create_group("force").create_dataset("fx", data=np.zeros(10))
    with pytest.raises(DataValidationError, match=r"key 'trajectory0/force': expected a numeric array, got an HDF5 group "
                       r"\(keys: fx\)"):
        load_mujoco_push(path=str(d), history=HIST)
