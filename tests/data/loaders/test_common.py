"""mmib.data.loaders._common: the file loaders' shared machinery - finding files (path option, MMIB_DATA), schema
checks with errors that name file / key / expectation, memory-mapped storage, the seeded group split and the
modality subsets. (The restricted unpickler has its own file, test_pickle_safety.py; truncated files
test_truncated.py.)"""

import numpy as np
import pytest

from mmib.data.dataset import DataValidationError
from mmib.data.loaders._common import (
    DataFileNotFoundError,
    allocate,
    build_dataset_from_file,
    check_array,
    check_choice,
    data_root,
    describe,
    fail,
    finish,
    get_key,
    pick_modalities,
    resolve_path,
    seeded_group_split,
)
from mmib.data.spec import DatasetSpec, ModalitySpec
from mmib.errors import MMIBError


def test_data_root_follows_mmib_data(monkeypatch, tmp_path):
    assert data_root() is None  # unset (tests/data/loaders/conftest.py)
    monkeypatch.setenv("MMIB_DATA", "  ")
    assert data_root() is None
    monkeypatch.setenv("MMIB_DATA", str(tmp_path))
    assert data_root() == tmp_path


def test_resolve_path_tries_the_path_its_folder_and_mmib_data_in_order(monkeypatch, tmp_path):
    (tmp_path / "sets" / "mosi").mkdir(parents=True)
    nested = tmp_path / "sets" / "mosi" / "mosi.pkl"
    nested.write_bytes(b"x")
    top = tmp_path / "other.pkl"
    top.write_bytes(b"y")
    assert resolve_path(top, "mosi", ["mosi.pkl"]) == top  # the file itself
    assert resolve_path(tmp_path / "sets" / "mosi", "mosi", ["nope.pkl", "mosi.pkl"]) == nested  # a folder holding it
    assert resolve_path(tmp_path / "sets", "mosi", ["mosi"], want="dir") == tmp_path / "sets"
    monkeypatch.setenv("MMIB_DATA", str(tmp_path / "sets"))
    assert resolve_path(None, "mosi", ["mosi.pkl"]) == nested  # $MMIB_DATA/<dataset>/<name>
    (tmp_path / "sets" / "mosi.pkl").write_bytes(b"z")
    assert resolve_path("", "mosi", ["mosi.pkl"]) == tmp_path / "sets" / "mosi.pkl"  # $MMIB_DATA/<name> first
    with pytest.raises(DataFileNotFoundError) as e:
        resolve_path(None, "wesad", ["WESAD", "wesad"], want="dir")
    msg = str(e.value)
    assert isinstance(e.value, MMIBError) and isinstance(e.value, FileNotFoundError)
    for tried in ("sets/WESAD", "sets/wesad/WESAD", "sets/wesad/wesad"):
        assert str(tmp_path / tried) in msg
    assert "data set 'wesad': folder not found" in msg and "never downloads" in msg


def test_resolve_path_without_anything_says_so():
    with pytest.raises(DataFileNotFoundError, match=r"file not found \(tried: \(nothing: no path given and MMIB_DATA "
                                                    r"is unset\)\).*\$MMIB_DATA/a\.pkl or \$MMIB_DATA/ds/a\.pkl"):
        resolve_path(None, "ds", ["a.pkl", "b.pkl"])


def test_get_key_names_file_key_and_keys_present():
    d = {"train": {"vision": 1, "audio": 2}}
    assert get_key(d, "train", "f.pkl") == {"vision": 1, "audio": 2}
    with pytest.raises(DataValidationError, match=r"f\.pkl: missing key 'train/text' \(an array present keys: audio, "
                                                  r"vision\)"):
        get_key(d["train"], "text", "f.pkl", where="train", expected="an array")
    with pytest.raises(DataValidationError, match=r"f\.pkl: key 'train': expected a dict / group, got list"):
        get_key([1, 2], "x", "f.pkl", where="train")
    assert str(fail("f", "k", "this", "that")) == "f: key 'k': expected this, got that"
    assert describe(np.zeros((2, 3), np.float32)) == "ndarray of shape (2, 3) and dtype float32"
    assert describe([1]) == "list"


def test_check_array_shapes_dims_and_types():
    a = np.zeros((4, 3, 2))
    assert check_array(a, "f", "x", shape=(None, 3, (1, 2))) is a
    assert check_array([[1, 2], [3, 4]], "f", "x", ndim=2).dtype.kind == "i"
    with pytest.raises(DataValidationError, match=r"f: key 'x': expected shape \(N, 3, 1\|5\), got shape \(4, 3, 2\)"):
        check_array(a, "f", "x", shape=(None, 3, (1, 5)))
    with pytest.raises(DataValidationError, match=r"expected an array with 1 or 2 dimensions, got ndarray of shape "
                                                  r"\(4, 3, 2\)"):
        check_array(a, "f", "x", ndim=(1, 2))
    with pytest.raises(DataValidationError, match=r"expected a numeric array of shape \(N\), got ndarray of shape "
                                                  r"\(2,\) and dtype <U1"):
        check_array(np.array(["a", "b"]), "f", "y", shape=(None,))
    assert check_array(np.array(["a", "b"]), "f", "y", numeric=False).shape == (2,)
    with pytest.raises(DataValidationError, match=r"key 'x': expected a numeric array, got a dict \(keys: p, q\)"):
        check_array({"q": 1, "p": 2}, "f", "x")
    with pytest.raises(DataValidationError, match=r"key 'x': expected a numeric array, got an object array built from "
                                                  r"ndarray of shape \(2,\) and dtype object"):
        check_array([None, 1], "f", "x")
    with pytest.raises(DataValidationError, match=r"key 'x': expected an array, got list"):
        check_array([np.zeros(2), np.zeros(3)], "f", "x")  # ragged


def test_allocate_and_finish_in_memory_and_memory_mapped(tmp_path):
    mem = allocate((3, 2), np.float32, None, "a")
    assert not isinstance(mem, np.memmap) and finish(mem) is mem
    mm = allocate((3, 2), np.float32, tmp_path / "cache", "a")
    assert isinstance(mm, np.memmap) and (tmp_path / "cache" / "a.npy").exists()
    mm[:] = np.arange(6).reshape(3, 2)
    ro = finish(mm)
    assert isinstance(ro, np.memmap) and not ro.flags.writeable
    np.testing.assert_array_equal(ro, np.arange(6).reshape(3, 2))
    np.testing.assert_array_equal(np.load(tmp_path / "cache" / "a.npy"), np.arange(6).reshape(3, 2))


def test_build_dataset_from_file_names_the_file():
    spec = DatasetSpec("d", (ModalitySpec("a", "vector", (2,)),))
    ds = build_dataset_from_file("/data/d.npz", spec, x={"a": np.zeros((3, 2))})
    assert ds.source == "/data/d.npz" and len(ds) == 3
    with pytest.raises(DataValidationError, match=r"^/data/d\.npz: .*'a'"):
        build_dataset_from_file("/data/d.npz", spec, x={"a": np.zeros((3, 5))})


def test_seeded_group_split_keeps_groups_whole():
    groups = np.repeat(np.arange(10), 3)
    split = seeded_group_split(groups, 0.2, 0.3, seed=0, what="toy")
    assert np.array_equal(split, seeded_group_split(groups, 0.2, 0.3, seed=0, what="toy"))
    assert not np.array_equal(split, seeded_group_split(groups, 0.2, 0.3, seed=1, what="toy"))
    per_group = {g: set(split[groups == g]) for g in range(10)}
    assert all(len(s) == 1 for s in per_group.values())  # a group never straddles two splits
    counts = {k: sum(s == {k} for s in per_group.values()) for k in ("train", "val", "test")}
    assert counts == {"train": 5, "val": 2, "test": 3}
    assert set(seeded_group_split(groups, 0.0, 0.01, 0, "toy")) == {"train", "test"}  # a positive fraction: >= 1
    with pytest.raises(DataValidationError, match="toy: expected val_fraction, test_fraction >= 0 with a sum < 1"):
        seeded_group_split(groups, 0.5, 0.5, 0, "toy")
    with pytest.raises(DataValidationError, match=r"toy: 2 groups cannot be split .* \(need at least 3\)"):
        seeded_group_split(np.array([0, 0, 1]), 0.1, 0.1, 0, "toy")


def test_check_choice_and_pick_modalities():
    check_choice("variant", "raw", ["raw", "aligned"])
    with pytest.raises(DataValidationError, match="variant: expected one of raw, aligned, got 'rae'"):
        check_choice("variant", "rae", ["raw", "aligned"])
    avail = ("vision", "audio", "text")
    assert pick_modalities("mosi", None, avail) == avail
    assert pick_modalities("mosi", ["text", "vision"], avail) == ("vision", "text")
    assert pick_modalities("mosi", "audio", avail) == ("audio",)
    with pytest.raises(DataValidationError, match="mosi: unknown modality 'video'; valid: vision, audio, text"):
        pick_modalities("mosi", ["video"], avail)
    with pytest.raises(DataValidationError, match="mosi: an empty list of modalities was requested"):
        pick_modalities("mosi", [], avail)
