"""mmib.data.arrays: the boundary checks (conversion, dtype kinds, first non-finite sample, first float64 value beyond
float32) against a brute-force row scan, across chunk boundaries, for numpy, torch and memory-mapped arrays."""

import numpy as np
import pytest
import torch

import mmib.data.arrays as arrays
from mmib.data.arrays import FLOAT32_MAX, _as_array, _dtype_kind, find_float32_overflow, find_nonfinite
from mmib.data.spec import DataValidationError


def _first_bad_row(a: np.ndarray, valid=None):
    """Brute-force reference: the first row (not masked out) holding a non-finite value."""
    for i in range(a.shape[0]):
        if (valid is None or valid[i]) and not np.isfinite(a[i]).all():
            return i
    return None


@pytest.mark.parametrize("chunk", [4, 65536])
def test_find_nonfinite_matches_a_row_scan(monkeypatch, chunk):
    monkeypatch.setattr(arrays, "_CHECK_CHUNK", chunk)
    rng = np.random.default_rng(0)
    for trial in range(20):
        a = rng.normal(size=(23, 3, 2))
        for _ in range(trial % 4):  # 0..3 bad values at random places
            a[tuple(rng.integers(0, s) for s in a.shape)] = rng.choice([np.nan, np.inf, -np.inf])
        valid = rng.random(23) < 0.7
        assert find_nonfinite(a) == _first_bad_row(a)
        assert find_nonfinite(a, valid) == _first_bad_row(a, valid)
        assert find_nonfinite(torch.from_numpy(a)) == _first_bad_row(a)
        assert find_nonfinite(torch.from_numpy(a), valid) == _first_bad_row(a, valid)


def test_find_nonfinite_on_a_memmap_past_the_first_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(arrays, "_CHECK_CHUNK", 8)
    m = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=(40, 5))
    m[:] = 1.0
    m[29, 4] = np.nan
    m.flush()
    assert find_nonfinite(np.load(tmp_path / "x.npy", mmap_mode="r")) == 29
    assert find_nonfinite(np.ones((5, 2))) is None


def test_find_float32_overflow(monkeypatch):
    monkeypatch.setattr(arrays, "_CHECK_CHUNK", 3)
    a = np.zeros((10, 2))
    a[2, 0] = np.inf  # non-finite values are another check's business
    a[6] = [-1e39, 5e38]
    a[8, 1] = 1e300
    assert find_float32_overflow(a) == (6, 1e39)  # the row's largest finite |value|
    valid = np.ones(10, bool)
    valid[6] = False
    assert find_float32_overflow(a, valid) == (8, 1e300)
    assert find_float32_overflow(torch.from_numpy(a)) == (6, 1e39)
    edge = np.full((2, 1), FLOAT32_MAX)  # exactly the largest float32 still fits
    assert find_float32_overflow(edge) is None
    assert find_float32_overflow(np.nextafter(edge, np.inf)) == (0, float(np.nextafter(FLOAT32_MAX, np.inf)))
    # float32 (and narrower, and integer) inputs cannot hold such values
    assert find_float32_overflow(np.full((3, 1), np.inf, np.float32)) is None
    assert find_float32_overflow(torch.full((3, 1), 1e30)) is None
    assert find_float32_overflow(np.full((3, 1), 2**62, np.int64)) is None


def test_as_array_names_what_cannot_be_converted():
    out = _as_array("a", "modality", [[1, 2], [3, 4]])
    assert isinstance(out, np.ndarray) and out.shape == (2, 2)
    t = torch.zeros(3)
    assert _as_array("a", "modality", t) is t
    with pytest.raises(DataValidationError, match=r"modality 'a': cannot convert list to an array"):
        _as_array("a", "modality", [[1, 2], [3]])
    with pytest.raises(DataValidationError, match=r"latent 'z': expected an array with one entry per sample, got a "
                                                  "scalar"):
        _as_array("z", "latent", 3.0)


@pytest.mark.parametrize("a,kind", [
    (np.zeros(2, np.float16), "f"), (np.zeros(2, np.uint8), "i"), (np.zeros(2, np.int32), "i"),
    (np.zeros(2, bool), "b"), (np.zeros(2, np.complex64), "c"), (np.array(["x", "y"]), "U"),
    (np.array([None, 1], dtype=object), "O"), (torch.zeros(2), "f"), (torch.zeros(2, dtype=torch.bfloat16), "f"),
    (torch.zeros(2, dtype=torch.uint8), "i"), (torch.zeros(2, dtype=torch.bool), "b"),
    (torch.zeros(2, dtype=torch.complex64), "c")])
def test_dtype_kind(a, kind):
    assert _dtype_kind(a) == kind
