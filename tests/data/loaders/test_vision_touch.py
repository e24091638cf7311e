"""Vision & Touch h5 episodes: written natively, read back; modalities, targets, seeded episode splits, pairs."""

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from mmib.data.dataset import DataValidationError  # noqa: E402
from mmib.data.loaders._common import DataFileNotFoundError  # noqa: E402
from mmib.data.loaders.vision_touch import load_vision_touch, trajectory_pairs  # noqa: E402
from mmib.data.registry import build_dataset  # noqa: E402

T, H, W = 5, 8, 8


def _episode(path, e, chw=False, **override):
    rng = np.random.default_rng(e)
    image = rng.integers(0, 255, size=(T, H, W, 3), dtype=np.uint8)
    data = {
        "image": np.transpose(image, (0, 3, 1, 2)) if chw else image,
        "depth_data": rng.random((T, H, W)).astype(np.float32),
        "proprio": np.arange(T * 9, dtype=np.float32).reshape(T, 9) + 100 * e,
        "ee_forces_continuous": rng.normal(size=(T, 40, 6)).astype(np.float32) * 3,
        "optical_flow": rng.normal(size=(T, H, W, 2)).astype(np.float32),
        "action": rng.normal(size=(T, 4)).astype(np.float32),
        "contact": (np.arange(T * 2).reshape(T, 2) % (e + 2) == 0).astype(np.float32) * (e % 2),
    }
    data.update(override)
    with h5py.File(path, "w") as f:
        for k, v in data.items():
            if v is not None:
                f.create_dataset(k, data=v)
    return data


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "vision_touch"
    d.mkdir()
    eps = [_episode(d / f"triangle_{e:02d}_1000.h5", e, chw=(e == 1)) for e in range(6)]
    return d, eps


def test_contact_vfp(folder):
    d, eps = folder
    ds = load_vision_touch(path=str(d))
    assert ds.spec.modality_names == ("image", "force", "proprio")
    assert len(ds) == 6 * (T - 1)
    assert ds.spec.modality("image").shape == (3, H, W) and ds.spec.modality("force").shape == (6, 32)
    # sample index = episode * (T - 1) + t; inputs at t, target at t + 1
    e, t = 1, 2
    i = e * (T - 1) + t
    np.testing.assert_allclose(ds.x["image"][i].numpy(), np.transpose(eps[e]["image"][t], (0, 1, 2)).astype(np.float32))
    np.testing.assert_allclose(ds.x["image"][0].numpy(), np.transpose(eps[0]["image"][0], (2, 0, 1)).astype(np.float32))
    np.testing.assert_allclose(ds.x["force"][i].numpy(), np.tanh(eps[e]["ee_forces_continuous"][t, -32:].T), rtol=1e-6)
    np.testing.assert_allclose(ds.x["proprio"][i].numpy(), eps[e]["proprio"][t, :8])
    want = [int(eps[ee]["contact"][tt + 1].sum() > 0) for ee in range(6) for tt in range(T - 1)]
    assert ds.y.tolist() == want and ds.spec.n_classes == 2
    assert ds.groups.tolist() == [ee for ee in range(6) for _ in range(T - 1)]


def test_orientation_vfd_and_settings(folder):
    d, eps = folder
    ds = load_vision_touch(path=str(d), task="orientation")
    assert ds.spec.modality_names == ("image", "force", "depth")
    assert ds.spec.task == "regression" and ds.spec.target_dim == 4
    np.testing.assert_allclose(ds.y[3 * (T - 1) + 1].numpy(), eps[3]["proprio"][2, :4])
    assert ds.spec.modality("depth").shape == (1, H, W)
    five = load_vision_touch(path=str(d), task="trajectory_pair", setting="VFPDO")
    assert five.spec.modality_names == ("image", "force", "proprio", "depth", "flow")
    assert five.spec.task == "none" and five.y is None
    np.testing.assert_allclose(five.x["flow"][0].numpy(), np.transpose(eps[0]["optical_flow"][0], (2, 0, 1)))
    custom = load_vision_touch(path=str(d), modalities=["depth", "image"], proprio_dim=3)
    assert custom.spec.modality_names == ("image", "depth")


def test_seeded_episode_split(folder, tmp_path):
    d, _ = folder
    a = load_vision_touch(path=str(d), seed=3, val_fraction=0.2, test_fraction=0.2)
    b = load_vision_touch(path=str(d), seed=3, val_fraction=0.2, test_fraction=0.2, cache_dir=str(tmp_path / "c"))
    assert (a.split == b.split).all()
    for e in range(6):  # whole episodes go to one split
        assert len(set(a.split[a.groups == e])) == 1
    assert set(a.split) == {"train", "val", "test"}
    assert isinstance(b.x["image"], np.memmap) and b.x["image"].dtype == np.uint8
    np.testing.assert_allclose(b.get_batch([5])["x"]["image"].numpy(), a.get_batch([5])["x"]["image"].numpy())
    c = load_vision_touch(path=str(d), seed=4, val_fraction=0.2, test_fraction=0.2)
    assert any((c.split[c.groups == e][0] != a.split[a.groups == e][0]) for e in range(6))


def test_trajectory_pairs_balanced_and_within_split(folder):
    d, _ = folder
    ds = load_vision_touch(path=str(d), task="trajectory_pair")
    tr = np.flatnonzero(ds.split == "train")
    a, b, same = trajectory_pairs(ds.groups, tr, n_pairs=40, seed=0)
    assert same.sum() == 20 and len(a) == 40
    assert np.isin(a, tr).all() and np.isin(b, tr).all()
    assert ((ds.groups[a] == ds.groups[b]) == same.astype(bool)).all()
    assert (a[same == 1] != b[same == 1]).all()
    a2, b2, s2 = trajectory_pairs(ds.groups, tr, n_pairs=40, seed=0)
    assert (a == a2).all() and (b == b2).all() and (same == s2).all()


def test_malformed_episodes(tmp_path):
    d = tmp_path / "vt"
    d.mkdir()
    _episode(d / "ep0.h5", 0)
    _episode(d / "ep1.h5", 1, contact=None)
    with pytest.raises(DataValidationError, match=r"ep1\.h5: missing key 'contact'"):
        load_vision_touch(path=str(d))
    _episode(d / "ep1.h5", 1, ee_forces_continuous=np.zeros((T, 10, 6), np.float32))
    with pytest.raises(DataValidationError, match=r"ep1\.h5: key 'ee_forces_continuous': expected shape \(T, W >= 32, 6\)"):
        load_vision_touch(path=str(d))
    _episode(d / "ep1.h5", 1, image=np.zeros((T, H, W, 4), np.uint8))
    with pytest.raises(DataValidationError, match=r"key 'image': expected shape \(T, H, W, 3\) or \(T, 3, H, W\)"):
        load_vision_touch(path=str(d))
    _episode(d / "ep1.h5", 1, image=np.zeros((T, 3, H + 1, W), np.uint8))
    with pytest.raises(DataValidationError, match=r"ep1\.h5: key 'image': expected per-step shape \(3, 8, 8\)"):
        load_vision_touch(path=str(d))
    _episode(d / "ep1.h5", 1, proprio=np.array([b"x"] * T))
    with pytest.raises(DataValidationError, match=r"key 'proprio': expected a numeric array"):
        load_vision_touch(path=str(d))
    (d / "ep1.h5").write_bytes(b"garbage")
    with pytest.raises(DataValidationError, match=r"ep1\.h5: not a readable HDF5 file"):
        load_vision_touch(path=str(d))


def test_missing_folder_and_options(tmp_path):
    with pytest.raises(DataFileNotFoundError, match="MMIB_DATA"):
        build_dataset("vision_touch")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataValidationError, match=r"no episode files"):
        load_vision_touch(path=str(tmp_path / "empty"))
    with pytest.raises(DataValidationError, match="task"):
        load_vision_touch(path=str(tmp_path / "empty"), task="juggling")
    with pytest.raises(DataValidationError, match="setting"):
        load_vision_touch(path=str(tmp_path / "empty"), setting="VX")
