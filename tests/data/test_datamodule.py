import numpy as np
import pytest
import torch

from mmib.data.datamodule import MultimodalDataModule, split_indices
from mmib.data.dataset import DataValidationError, MultimodalDataset
from mmib.data.spec import DatasetSpec, ModalitySpec


def _ds(n=200, groups=None, split=None):
    rng = np.random.default_rng(0)
    spec = DatasetSpec("toy", (ModalitySpec("a", "vector", (3,)), ModalitySpec("s", "signal", (2, 6))),
                       task="classification", n_classes=4)
    x = {"a": rng.normal(5.0, 3.0, size=(n, 3)), "s": rng.normal(-2.0, 0.5, size=(n, 2, 6))}
    return MultimodalDataset(spec, x, y=np.arange(n) % 4, groups=groups, split=split)


def test_splits_are_seeded_disjoint_and_stratified():
    ds = _ds()
    a = split_indices(ds, 0.15, 0.15, seed=3)
    b = split_indices(ds, 0.15, 0.15, seed=3)
    c = split_indices(ds, 0.15, 0.15, seed=4)
    for s in a:
        np.testing.assert_array_equal(a[s], b[s])
    assert not np.array_equal(a["test"], c["test"])
    allidx = np.concatenate(list(a.values()))
    assert len(allidx) == 200 and len(np.unique(allidx)) == 200
    counts = np.bincount(ds.y.numpy()[a["test"]], minlength=4)
    assert counts.min() == counts.max()  # stratified: equal class counts


def test_group_and_predefined_splits():
    groups = np.repeat(np.arange(10), 20)
    ds = _ds(groups=groups)
    idx = split_indices(ds, 0.2, 0.2, seed=0)
    g = {s: set(groups[v]) for s, v in idx.items()}
    assert not (g["train"] & g["test"]) and not (g["train"] & g["val"]) and not (g["val"] & g["test"])
    split = np.array(["train"] * 150 + ["test"] * 50)
    ds = _ds(split=split)
    idx = split_indices(ds, 0.1, 0.0, seed=0)
    assert set(idx["test"]) == set(range(150, 200))
    assert len(idx["val"]) == 15 and set(idx["val"]) < set(range(150))
    with pytest.raises(DataValidationError, match="split fractions"):
        split_indices(ds, 0.6, 0.5)


def test_standardization_is_fitted_on_train_only():
    ds = _ds()
    dm = MultimodalDataModule(ds, batch_size=32, seed=1)
    tr = dm.split_batch("train")
    torch.testing.assert_close(tr["x"]["a"].mean(0), torch.zeros(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(tr["x"]["a"].std(0, unbiased=False), torch.ones(3), atol=1e-4, rtol=0)
    # per-channel statistics for signals
    s = tr["x"]["s"]
    torch.testing.assert_close(s.mean(dim=(0, 2)), torch.zeros(2), atol=1e-4, rtol=0)
    # the test split is transformed with the train statistics, so it is not exactly standardized
    te = dm.split_batch("test")["x"]["a"]
    raw_te = torch.tensor(np.asarray(ds.x["a"])[dm.indices["test"]])
    mean, std = ds.normalization["a"]
    torch.testing.assert_close(te, (raw_te - mean) / std)


def test_a_data_set_reused_by_a_second_data_module_is_standardized_from_its_raw_values():
    """Regression: the second module used to fit its statistics on the first module's normalized values (≈ 0, 1),
    leaving the data effectively unstandardized (found through COX on the digits: ERM at chance)."""
    ds = _ds()
    first = MultimodalDataModule(ds, batch_size=32, seed=1)
    stats = {k: (m.clone(), s.clone()) for k, (m, s) in ds.normalization.items()}
    b1 = first.split_batch("train")["x"]["a"].clone()
    second = MultimodalDataModule(ds, batch_size=32, seed=1)
    for k, (m, s) in stats.items():
        torch.testing.assert_close(ds.normalization[k][0], m)
        torch.testing.assert_close(ds.normalization[k][1], s)
    torch.testing.assert_close(second.split_batch("train")["x"]["a"], b1)
    assert float(ds.normalization["a"][1].mean()) > 2.0  # the raw std (3), not ~1


def test_loaders_and_empty_split():
    dm = MultimodalDataModule(_ds(), batch_size=32, seed=0)
    b = next(iter(dm.train_dataloader()))
    assert b["x"]["a"].shape == (32, 3) and b["y"].shape == (32,)
    order1 = [int(i) for bb in dm.train_dataloader() for i in bb["index"]]
    order2 = [int(i) for bb in MultimodalDataModule(_ds(), batch_size=32, seed=0).train_dataloader() for i in bb["index"]]
    assert order1 == order2
    dm0 = MultimodalDataModule(_ds(), batch_size=32, seed=0, test_fraction=0.0)
    with pytest.raises(DataValidationError, match="the test split is empty"):
        dm0.test_dataloader()
