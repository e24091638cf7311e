"""The data contract: validation at the boundary, batches, collate."""

import numpy as np
import pytest
import torch

from mmib.data.dataset import DataValidationError, MultimodalDataset, collate_multimodal, validate_batch


def _arrays(n=10, seed=0):
    rng = np.random.default_rng(seed)
    return {"a": rng.normal(size=(n, 5)), "s": rng.normal(size=(n, 2, 8)).astype(np.float32)}


def test_sample_and_batch_layout(toy_spec):
    x = _arrays()
    ds = MultimodalDataset(toy_spec(), x, y=np.arange(10) % 3, latents={"z": np.arange(10) % 2})
    s = ds[3]
    assert set(s) == {"x", "mask", "y", "latents", "index"}
    assert s["x"]["a"].shape == (5,) and s["x"]["a"].dtype == torch.float32
    assert s["x"]["s"].shape == (2, 8)
    assert int(s["y"]) == 0 and int(s["latents"]["z"]) == 1 and bool(s["mask"]["a"])
    torch.testing.assert_close(s["x"]["a"], torch.tensor(x["a"][3], dtype=torch.float32))
    b = collate_multimodal([ds[i] for i in range(4)])
    fast = ds.get_batch([0, 1, 2, 3])
    for k in ("a", "s"):
        torch.testing.assert_close(b["x"][k], fast["x"][k])
    torch.testing.assert_close(b["y"], fast["y"])
    assert collate_multimodal(fast) is fast


@pytest.mark.parametrize(
    "mutate, match",
    [
        (lambda x: x.update(a=np.zeros((10, 6))), r"modality 'a' \(vector\): expected per-sample shape \(5,\)"),
        (lambda x: x.update(a=np.zeros((10, 5, 1))), r"modality 'a' \(vector\): expected an array of rank 2"),
        (lambda x: x.update(s=np.zeros((9, 2, 8))), r"different numbers of samples \('a': 10, 's': 9\)"),
        (lambda x: x.update(a=np.array([["x"] * 5] * 10)), r"modality 'a': expected a real numeric dtype"),
        (lambda x: x.update(b=np.zeros((10, 5))), r"unknown modality 'b' for data set 'toy'; expected modalities: a, s"),
        (lambda x: x.pop("s"), r"modality 's' has no array"),
    ],
)
def test_bad_input_is_named(mutate, match, toy_spec):
    x = _arrays()
    mutate(x)
    with pytest.raises(DataValidationError, match=match):
        MultimodalDataset(toy_spec(), x, y=np.zeros(10, int))


def test_nan_and_inf_name_modality_and_sample(toy_spec):
    x = _arrays()
    x["s"][7, 1, 3] = np.nan
    with pytest.raises(DataValidationError, match=r"modality 's': NaN or inf in sample 7"):
        MultimodalDataset(toy_spec(), x)
    x = _arrays()
    x["a"][2, 0] = np.inf
    with pytest.raises(DataValidationError, match=r"modality 'a': NaN or inf in sample 2"):
        MultimodalDataset(toy_spec(), x)


def test_missing_modality_may_hold_nan_and_is_zeroed(toy_spec):
    x = _arrays()
    x["s"][4] = np.nan
    mask = {"s": np.arange(10) != 4}
    ds = MultimodalDataset(toy_spec(), x, mask=mask)
    b = ds.get_batch([3, 4])
    assert torch.isfinite(b["x"]["s"]).all()
    assert b["x"]["s"][1].abs().sum() == 0
    assert b["mask"]["s"].tolist() == [True, False]
    assert b["mask"]["a"].tolist() == [True, True]


def test_labels_checked(toy_spec):
    with pytest.raises(DataValidationError, match=r"class indices must lie in \[0, 2\], got range \[0, 5\]"):
        MultimodalDataset(toy_spec(), _arrays(), y=np.arange(10) % 6)
    with pytest.raises(DataValidationError, match="classification expects integer class indices"):
        MultimodalDataset(toy_spec(), _arrays(), y=np.linspace(0, 1, 10))
    with pytest.raises(DataValidationError, match=r"labels y: expected 10 entries"):
        MultimodalDataset(toy_spec(), _arrays(), y=np.zeros(4, int))
    with pytest.raises(DataValidationError, match=r"labels y: NaN or inf in sample 1"):
        MultimodalDataset(toy_spec("regression"), _arrays(), y=np.array([0, np.nan] + [0] * 8))


def test_validate_batch_errors(toy_spec):
    spec = toy_spec()
    ds = MultimodalDataset(spec, _arrays())
    b = ds.get_batch([0, 1, 2])
    assert validate_batch(b, spec) == ("a", "s")
    assert validate_batch(b, spec, ["s"]) == ("s",)
    bad = {"x": {"a": b["x"]["a"], "s": b["x"]["s"][:2]}}
    with pytest.raises(DataValidationError, match="different batch sizes"):
        validate_batch(bad, spec)
    bad = {"x": {"a": b["x"]["a"].clone()}}
    bad["x"]["a"][1, 2] = float("nan")
    with pytest.raises(DataValidationError, match=r"modality 'a': NaN or inf in batch row 1"):
        validate_batch(bad, spec)
    with pytest.raises(DataValidationError, match="expected a floating-point tensor"):
        validate_batch({"x": {"a": torch.zeros(3, 5, dtype=torch.long)}}, spec)
    with pytest.raises(DataValidationError, match="batch has unknown modality 'zz'"):
        validate_batch({"x": {"zz": torch.zeros(3, 5)}}, spec)


def test_memmap_streams(tmp_path, toy_spec):
    x = _arrays(50)
    path = tmp_path / "a.npy"
    np.save(path, x["a"].astype(np.float32))
    mm = np.load(path, mmap_mode="r")
    ds = MultimodalDataset(toy_spec(), {"a": mm, "s": x["s"]})
    assert isinstance(ds.x["a"], np.memmap)
    b = ds.get_batch([7, 3, 40])
    torch.testing.assert_close(b["x"]["a"], torch.tensor(x["a"][[7, 3, 40]], dtype=torch.float32))


def test_batch_row_helpers_select_complete_samples_everywhere():
    from mmib.data.dataset import batch_to_device, complete_rows_mask, select_batch_rows

    b = {"x": {"a": torch.arange(8.0).reshape(4, 2), "b": torch.arange(4.0)},
         "mask": {"a": torch.tensor([True, True, False, True]), "b": torch.tensor([True, False, True, True])},
         "y": torch.tensor([0, 1, 2, 3]), "meta": "kept"}
    keep = complete_rows_mask(b, ["a", "b"])
    assert keep.tolist() == [True, False, False, True]
    assert complete_rows_mask(b, []) is None
    s = select_batch_rows(b, keep)
    assert s["y"].tolist() == [0, 3] and s["x"]["a"].tolist() == [[0.0, 1.0], [6.0, 7.0]]
    assert s["mask"]["b"].tolist() == [True, True] and s["meta"] == "kept"
    assert batch_to_device(s, "cpu")["x"]["b"].tolist() == [0.0, 3.0]
