"""MultiBench affect pickles: written natively, read back; alignment, padding, label and split conventions."""

import pickle

import numpy as np
import pytest
import torch

from mmib.data.dataset import DataValidationError
from mmib.data.loaders._common import DataFileNotFoundError
from mmib.data.loaders.affect import (
    AFFECT_FILES,
    load_affect,
    load_mosei,
    load_mosi,
    load_mustard,
    load_urfunny,
)
from mmib.data.registry import build_dataset

T, DV, DA, DT = 6, 3, 4, 5


def _split(rng, n, starts, labels, vision_starts=None, dims=(DV, DA, DT), label_shape=None):
    """Front-padded sequences: sample i has text from step starts[i] (starts[i] == T: all-zero text).

    ``dims``: the (vision, audio, text) feature sizes; ``label_shape``: the labels' trailing shape (default (1, 1),
    as in the MOSI / MOSEI pickles)."""
    dv, da, dt = dims
    text = np.zeros((n, T, dt), np.float32)
    vision = np.zeros((n, T, dv), np.float32)
    audio = np.zeros((n, T, da), np.float32)
    for i, s in enumerate(starts):
        text[i, s:] = rng.normal(size=(T - s, dt)) + 5.0
        vs = s if vision_starts is None else vision_starts[i]
        vision[i, vs:] = rng.normal(size=(T - vs, dv)) + 5.0
        audio[i, s:] = rng.normal(size=(T - s, da)) + 5.0
    audio[0, -1, 0] = -np.inf
    shape = (n, 1, 1) if label_shape is None else (n, *label_shape)
    return {"vision": vision, "audio": audio, "text": text,
            "labels": np.asarray(labels, np.float32).reshape(shape), "id": np.arange(n).astype(str)}


def _write(path, data):
    with open(path, "wb") as f:
        pickle.dump(data, f)
    return path


@pytest.fixture
def mosi_file(tmp_path):
    rng = np.random.default_rng(0)
    data = {
        "train": _split(rng, 5, [2, 0, 6, 3, 1], [1.4, -0.6, 2.0, 0.0, -2.6], vision_starts=[3, 0, 6, 3, 4]),
        "valid": _split(rng, 2, [1, 4], [0.2, -3.0]),
        "test": _split(rng, 3, [0, 2, 5], [0.0, 2.9, -1.2]),
    }
    return _write(tmp_path / "mosi_data.pkl", data), data


def test_text_alignment_drop_and_padding(mosi_file):
    path, data = mosi_file
    ds = load_mosi(path=str(path))
    # the all-zero-text sample of train is dropped (MultiBench drop_entry)
    assert len(ds) == 9
    assert [int((ds.split == s).sum()) for s in ("train", "val", "test")] == [4, 2, 3]
    assert ds.spec.modality("text").kind == "sequence" and ds.spec.modality("vision").shape == (T, DV)
    tr = data["train"]
    kept = [0, 1, 3, 4]
    starts = [2, 0, 3, 1]
    for row, (i, s) in enumerate(zip(kept, starts)):
        # every modality starts at the first non-zero text step, moved to the front, zero-padded at the end
        np.testing.assert_allclose(ds.x["text"][row, : T - s].numpy(), tr["text"][i, s:])
        assert torch.all(ds.x["text"][row, T - s :] == 0)
        np.testing.assert_allclose(ds.x["vision"][row, : T - s].numpy(), tr["vision"][i, s:])
        assert int(ds.lengths["text"][row]) == T - s == int(ds.lengths["audio"][row])
    # audio -inf -> 0 (sample 0, last step, feature 0)
    assert float(ds.x["audio"][0, T - 2 - 1, 0]) == 0.0
    assert torch.isfinite(ds.x["audio"]).all()


#: every (data set, variant) the loader supports: its file name, feature sizes (vision, audio, text; small stand-ins
#: that differ between variants as the real ones do: MOSEI raw carries the 713-d visual features), the labels per
#: split in the file's own convention and their trailing shape
AFFECT_CASES = [
    ("mosi", "aligned", "mosi_data.pkl", (3, 4, 5), "sentiment", (1, 1)),
    ("mosi", "raw", "mosi_raw.pkl", (3, 4, 5), "sentiment", (1,)),
    ("mosei", "aligned", "mosei_senti_data.pkl", (4, 4, 5), "sentiment", (1, 1)),
    ("mosei", "raw", "mosei_raw.pkl", (9, 4, 5), "sentiment", (1, 1)),
    ("urfunny", "aligned", "humor.pkl", (6, 3, 5), "humor", (1,)),
    ("mustard", "aligned", "sarcasm.pkl", (6, 3, 5), "sarcasm", ()),
]
LOADERS = {"mosi": load_mosi, "mosei": load_mosei, "urfunny": load_urfunny, "mustard": load_mustard}
#: per split: text start per sample (T = all-zero text: the sample is dropped) and the labels per convention
READBACK_STARTS = {"train": [1, T, 0, 2], "valid": [0, 3], "test": [2, 0, 4]}
READBACK_LABELS = {
    "sentiment": {"train": [1.5, 0.3, -2.0, 0.0], "valid": [0.0, -0.4], "test": [2.2, -1.0, 0.7]},
    "humor": {"train": [1, 0, 0, 1], "valid": [0, 1], "test": [1, 1, 0]},
    "sarcasm": {"train": [1, -1, -1, 1], "valid": [-1, 1], "test": [1, 1, -1]},
}


def test_readback_cases_cover_every_supported_file():
    assert {(name, variant, fname) for name, variant, fname, *_ in AFFECT_CASES} == {
        (name, variant, fname) for name, files in AFFECT_FILES.items() for variant, fname in files.items()}


@pytest.mark.parametrize("name, variant, fname, dims, labels, label_shape", AFFECT_CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in AFFECT_CASES])
def test_native_readback_every_file(tmp_path, name, variant, fname, dims, labels, label_shape):
    rng = np.random.default_rng(2)
    data = {s: _split(rng, len(st), st, READBACK_LABELS[labels][s], dims=dims, label_shape=label_shape)
            for s, st in READBACK_STARTS.items()}
    _write(tmp_path / fname, data)
    kw = {"variant": variant} if name in ("mosi", "mosei") else {}
    # a folder: the loader picks the variant's file name
    ds = build_dataset(name, path=str(tmp_path), **kw)
    assert ds.spec.name == name and fname in ds.spec.description
    dv, da, dt = dims
    assert [ds.spec.modality(m).shape for m in ("vision", "audio", "text")] == [(T, dv), (T, da), (T, dt)]
    assert all(ds.spec.modality(m).kind == "sequence" for m in ("vision", "audio", "text"))
    # splits: the file's train / valid / test, less the all-zero-text sample of train
    assert [int((ds.split == s).sum()) for s in ("train", "val", "test")] == [3, 2, 3]
    assert ds.split.tolist() == ["train"] * 3 + ["val"] * 2 + ["test"] * 3
    # labels: binary = label > 0 in every convention (sentiment, humor 0/1, sarcasm -1/1)
    kept = {s: [i for i, st in enumerate(starts) if st < T] for s, starts in READBACK_STARTS.items()}
    want = [int(READBACK_LABELS[labels][s][i] > 0) for s in ("train", "valid", "test") for i in kept[s]]
    assert ds.y.tolist() == want and ds.spec.task == "classification" and ds.spec.n_classes == 2
    # alignment and -inf: every modality starts at the first non-zero text step; audio -inf -> 0
    row = 0
    for s in ("train", "valid", "test"):
        for i in kept[s]:
            st = READBACK_STARTS[s][i]
            src_audio = np.where(np.isneginf(data[s]["audio"][i]), 0.0, data[s]["audio"][i])
            np.testing.assert_allclose(ds.x["audio"][row, : T - st].numpy(), src_audio[st:])
            np.testing.assert_allclose(ds.x["text"][row, : T - st].numpy(), data[s]["text"][i, st:])
            np.testing.assert_allclose(ds.x["vision"][row, : T - st].numpy(), data[s]["vision"][i, st:])
            assert torch.all(ds.x["text"][row, T - st :] == 0) and int(ds.lengths["vision"][row]) == T - st
            row += 1
    assert torch.isfinite(ds.x["audio"]).all()
    first_train = READBACK_STARTS["train"][0]  # the -inf sat at the last step of sample 0 of each split
    assert float(ds.x["audio"][0, T - 1 - first_train, 0]) == 0.0
    # the same file read directly, by the data set's own loader
    assert len(LOADERS[name](path=str(tmp_path / fname), **kw)) == len(ds)
    if name in ("mosi", "mosei"):
        reg = LOADERS[name](path=str(tmp_path / fname), variant=variant, label_mode="regression")
        lab = [READBACK_LABELS[labels][s][i] for s in ("train", "valid", "test") for i in kept[s]]
        np.testing.assert_allclose(reg.y.numpy(), lab, rtol=1e-6)


def test_label_conventions(mosi_file):
    path, _ = mosi_file
    labels = np.array([1.4, -0.6, 0.0, -2.6, 0.2, -3.0, 0.0, 2.9, -1.2])  # after the drop
    assert ds_y(path, "binary") == (labels > 0).astype(int).tolist()
    assert ds_y(path, "binary_ge0") == (labels >= 0).astype(int).tolist()
    assert ds_y(path, "7class") == (np.round(labels) + 3).astype(int).tolist()
    reg = load_mosi(path=str(path), label_mode="regression")
    assert reg.spec.task == "regression"
    np.testing.assert_allclose(reg.y.numpy(), labels, rtol=1e-6)
    nz = load_mosi(path=str(path), label_mode="binary_nonzero")
    assert len(nz) == 7 and nz.y.tolist() == (labels[labels != 0] > 0).astype(int).tolist()
    assert load_mosi(path=str(path), label_mode="7class").spec.n_classes == 7


def ds_y(path, mode):
    return load_mosi(path=str(path), label_mode=mode).y.tolist()


def test_per_modality_and_no_alignment(mosi_file):
    path, data = mosi_file
    ds = load_mosi(path=str(path), alignment="per_modality")
    # train sample 0: text starts at 2, vision at 3
    np.testing.assert_allclose(ds.x["vision"][0, : T - 3].numpy(), data["train"]["vision"][0, 3:])
    assert int(ds.lengths["vision"][0]) == T - 3 and int(ds.lengths["text"][0]) == T - 2
    raw = load_mosi(path=str(path), alignment="none", modalities=["text"])
    assert raw.spec.modality_names == ("text",) and raw.lengths == {}
    np.testing.assert_allclose(raw.x["text"][0].numpy(), data["train"]["text"][0])
    short = load_mosi(path=str(path), max_seq_len=4)
    assert short.spec.modality("audio").shape == (4, DA)
    assert int(short.lengths["text"].max()) <= 4


def test_registry_folder_and_mmib_data(mosi_file, monkeypatch, tmp_path):
    path, _ = mosi_file
    ds = build_dataset("mosi", path=str(tmp_path))  # a folder holding mosi_data.pkl
    assert len(ds) == 9
    monkeypatch.setenv("MMIB_DATA", str(tmp_path))
    assert len(load_mosi()) == 9
    with pytest.raises(DataFileNotFoundError, match=r"mosi_raw\.pkl.*MMIB_DATA"):
        load_mosi(variant="raw")


def test_missing_file_names_path_and_env(tmp_path):
    with pytest.raises(DataFileNotFoundError, match="MMIB_DATA") as e:
        load_mosei()
    assert "mosei_senti_data.pkl" in str(e.value)
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nope.pkl")):
        load_mosei(path=str(tmp_path / "nope.pkl"))


def test_humor_and_sarcasm_binary(tmp_path):
    rng = np.random.default_rng(1)
    for name, loader, fname, labs in (
        ("urfunny", load_urfunny, "humor.pkl", [0, 1, 1, 0]),
        ("mustard", load_mustard, "sarcasm.pkl", [-1, 1, 1, -1]),
    ):
        data = {s: _split(rng, 4, [0, 1, 2, 3], labs) for s in ("train", "valid", "test")}
        for s in data:
            data[s]["labels"] = np.asarray(labs, np.float32).reshape(4, 1)
        ds = loader(path=str(_write(tmp_path / fname, data)))
        assert ds.spec.name == name and ds.spec.n_classes == 2
        assert ds.y.tolist() == [0, 1, 1, 0] * 3
        with pytest.raises(DataValidationError, match="label_mode"):
            loader(path=str(tmp_path / fname), label_mode="7class")


@pytest.mark.parametrize(
    "mutate, pattern",
    [
        (lambda d: d["valid"].pop("audio"), r"missing key 'valid/audio'"),
        (lambda d: d.pop("test"), r"missing key 'test'"),
        (lambda d: d["train"].__setitem__("vision", np.zeros((5, T))), r"train/vision.*shape \(N, N, N\).*\(5, 6\)"),
        (lambda d: d["train"].__setitem__("labels", np.array(["a"] * 5)), r"train/labels.*numeric"),
        (lambda d: d["test"].__setitem__("audio", np.zeros((3, T, DA + 1), np.float32)), r"'audio'.*same \(T, d\)"),
        (lambda d: d["train"].__setitem__("text", np.zeros((4, T, DT), np.float32)), r"split 'train'.*different numbers"),
    ],
)
def test_malformed_files(mosi_file, tmp_path, mutate, pattern):
    path, data = mosi_file
    mutate(data)
    _write(path, data)
    with pytest.raises(DataValidationError, match=pattern) as e:
        load_mosi(path=str(path))
    assert str(path) in str(e.value)


def test_not_a_pickle_and_wrong_root(tmp_path):
    p = tmp_path / "mosi_data.pkl"
    p.write_bytes(b"this is not a pickle")
    with pytest.raises(DataValidationError, match="not a readable pickle"):
        load_mosi(path=str(p))
    _write(p, [1, 2, 3])
    with pytest.raises(DataValidationError, match=r"a dict with keys train, valid, test.*list"):
        load_mosi(path=str(p))


def test_bad_options(mosi_file):
    path, _ = mosi_file
    with pytest.raises(DataValidationError, match="alignment"):
        load_affect("mosi", path=str(path), alignment="sideways")
    with pytest.raises(DataValidationError, match="unknown modality 'smell'"):
        load_mosi(path=str(path), modalities=["smell"])
