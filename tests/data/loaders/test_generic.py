"""The generic format: .npz, HDF5, folder of .npy arrays, folder of shards; memory mapping; metadata; errors."""

import json

import numpy as np
import pytest
import torch

from mmib.data.dataset import DataValidationError
from mmib.data.loaders._common import DataFileNotFoundError
from mmib.data.loaders.generic import load_generic
from mmib.data.registry import build_dataset

N = 12


def _arrays(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "eeg": rng.normal(size=(N, 2, 8)).astype(np.float32),
        "feat": rng.normal(size=(N, 5)),
        "seq": rng.normal(size=(N, 6, 3)).astype(np.float32),
        "y": np.arange(N) % 3,
        "split": np.array(["train"] * 8 + ["val"] * 2 + ["test"] * 2),
        "groups": np.arange(N) // 4,
        "latent_z": np.arange(N) % 2,
        "mask_feat": np.arange(N) != 4,
        "lengths_seq": np.full(N, 6) - np.arange(N) % 3,
    }


META = {"name": "mine", "modalities": {"seq": {"kind": "sequence"}, "eeg": {"rate": 128, "channels": ["C3", "C4"]}}}


def _check(ds, a):
    assert ds.spec.name == "mine"
    assert ds.spec.modality("seq").kind == "sequence" and ds.spec.modality("eeg").kind == "signal"
    assert ds.spec.modality("eeg").rate == 128.0 and ds.spec.modality("eeg").channels == ("C3", "C4")
    assert ds.spec.modality("feat").kind == "vector"
    assert ds.spec.task == "classification" and ds.spec.n_classes == 3 and ds.spec.latents == {"z": 2}
    assert ds.split.tolist() == a["split"].tolist() and ds.groups.tolist() == a["groups"].tolist()
    b = ds.get_batch([4, 1, 7])
    np.testing.assert_allclose(b["x"]["eeg"].numpy(), a["eeg"][[4, 1, 7]])
    assert b["mask"]["feat"].tolist() == [False, True, True] and torch.all(b["x"]["feat"][0] == 0)
    np.testing.assert_allclose(b["x"]["feat"][1].numpy(), a["feat"][1], rtol=1e-6)
    assert b["lengths"]["seq"].tolist() == a["lengths_seq"][[4, 1, 7]].tolist()
    assert b["y"].tolist() == [1, 1, 1] and b["latents"]["z"].tolist() == [0, 1, 1]


def test_npz_uncompressed_is_memory_mapped(tmp_path):
    a = _arrays()
    p = tmp_path / "mine.npz"
    np.savez(p, meta=json.dumps(META), **a)
    ds = load_generic(path=str(p))
    _check(ds, a)
    assert isinstance(ds.x["eeg"], np.memmap) and isinstance(ds.x["seq"], np.memmap)
    pc = tmp_path / "mine_c.npz"
    np.savez_compressed(pc, meta=json.dumps(META), **a)
    dc = load_generic(path=str(pc))
    _check(dc, a)
    assert not isinstance(dc.x["eeg"], np.memmap)


def test_hdf5_attributes_and_memory_map(tmp_path):
    h5py = pytest.importorskip("h5py")
    a = _arrays()
    p = tmp_path / "mine.h5"
    with h5py.File(p, "w") as f:
        for k, v in a.items():
            if k == "split":
                f.create_dataset(k, data=v.astype("S5"))
            elif k == "eeg":
                ds = f.create_dataset(k, data=v)  # contiguous → memory-mapped
                ds.attrs["rate"] = 128.0
                ds.attrs["channels"] = ["C3", "C4"]
            elif k == "seq":
                ds = f.create_dataset(k, data=v, compression="gzip")  # chunked → read
                ds.attrs["kind"] = "sequence"
            else:
                f.create_dataset(k, data=v)
        f.attrs["meta"] = json.dumps({"name": "mine"})
    ds = build_dataset("generic", path=str(p))
    _check(ds, a)
    assert isinstance(ds.x["eeg"], np.memmap) and not isinstance(ds.x["seq"], np.memmap)


def test_folder_of_npy_arrays(tmp_path, monkeypatch):
    a = _arrays()
    d = tmp_path / "generic"
    d.mkdir()
    for k, v in a.items():
        np.save(d / f"{k}.npy", v)
    (d / "meta.json").write_text(json.dumps(META))
    ds = load_generic(path=str(d))
    _check(ds, a)
    assert isinstance(ds.x["eeg"], np.memmap)
    monkeypatch.setenv("MMIB_DATA", str(tmp_path))
    _check(load_generic(), a)  # $MMIB_DATA/generic


def test_folder_of_shards(tmp_path):
    a = _arrays()
    d = tmp_path / "shards"
    d.mkdir()
    (d / "meta.json").write_text(json.dumps(META))
    np.savez(d / "part0.npz", **{k: v[:5] for k, v in a.items()})
    np.savez(d / "part1.npz", **{k: v[5:] for k, v in a.items()})
    _check(load_generic(path=str(d)), a)
    cached = load_generic(path=str(d), cache_dir=str(tmp_path / "cache"), modalities=["eeg", "seq", "feat"])
    _check(cached, a)
    assert isinstance(cached.x["eeg"], np.memmap)
    np.savez(d / "part1.npz", **{k: v[5:] for k, v in a.items() if k != "groups"})
    with pytest.raises(DataValidationError, match=r"part1\.npz: shard arrays"):
        load_generic(path=str(d))


def test_inference_without_metadata(tmp_path):
    rng = np.random.default_rng(0)
    p = tmp_path / "plain.npz"
    np.savez(p, a=rng.normal(size=(N, 4)), img=rng.normal(size=(N, 1, 4, 4)), y=rng.normal(size=(N, 2)))
    ds = load_generic(path=str(p))
    assert ds.spec.task == "regression" and ds.spec.target_dim == 2 and ds.split is None
    assert ds.spec.modality("img").kind == "image" and ds.spec.name == "plain"
    np.savez(p, a=rng.normal(size=(N, 4)), b=rng.normal(size=(N, 3)))
    assert load_generic(path=str(p)).spec.task == "none"


@pytest.mark.parametrize(
    "arrays, meta, pattern",
    [
        ({"a": np.zeros(N)}, None, r"key 'a': expected an array \(N, \*per-sample shape\)"),
        ({"a": np.zeros((N, 3)), "b": np.zeros((N + 1, 3))}, None, r"different numbers of samples"),
        ({"a": np.array([["x"] * 3] * N)}, None, r"key 'a': expected a numeric"),
        ({"a": np.zeros((N, 3)), "split": np.array(["training"] * N)}, None, r"split: expected values in train/val/test"),
        ({"a": np.zeros((N, 3)), "split": np.array([b"\x80"] * N)}, None, r"key 'split': expected .*UTF-8.*not UTF-8"),
        ({"a": np.zeros((N, 3))}, "{not json", r"key 'meta': expected valid JSON"),
        ({"a": np.zeros((N, 3))}, json.dumps({"modalities": {"a": {"kind": "video"}}}), r"meta.modalities.a.kind"),
        ({"a": np.zeros((N, 3))}, json.dumps({"modalities": {"b": {}}}), r"meta.modalities.*b which have no array"),
        ({"a": np.zeros((N, 3))}, json.dumps({"task": "classification"}), r"key 'y'"),
        ({"a": np.zeros((N, 3)), "y": np.linspace(0, 1, N)}, json.dumps({"task": "classification"}), r"key 'y'.*integer"),
        ({"y": np.zeros(N)}, None, r"no modality arrays"),
        ({"a": np.zeros((N, 3)), "a2": np.full((N, 3), np.nan)}, None, r"modality 'a2': NaN or inf in sample 0"),
    ],
)
def test_malformed(tmp_path, arrays, meta, pattern):
    p = tmp_path / "bad.npz"
    extra = {} if meta is None else {"meta": meta}
    np.savez(p, **arrays, **extra)
    with pytest.raises(DataValidationError, match=pattern) as e:
        load_generic(path=str(p))
    assert str(p) in str(e.value)


def test_object_arrays_are_refused_and_missing_file(tmp_path):
    p = tmp_path / "obj.npz"
    np.savez(p, a=np.array([np.zeros(2), np.zeros(3)], dtype=object))
    with pytest.raises(DataValidationError, match=r"obj\.npz: key 'a'.*no pickled objects"):
        load_generic(path=str(p))
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(DataValidationError, match=r"expected a \.npz, \.h5 or \.hdf5"):
        load_generic(path=str(tmp_path / "x.txt"))
    with pytest.raises(DataFileNotFoundError, match="MMIB_DATA"):
        load_generic()
    with pytest.raises(DataFileNotFoundError, match="missing.npz"):
        load_generic(path=str(tmp_path / "missing.npz"))
