"""data.train_label_noise: training labels flipped to another class with the given probability; val/test
untouched."""

import numpy as np
import pytest
import torch

from mmib.config import compose_config
from mmib.data.datamodule import MultimodalDataModule
from mmib.data.dataset import DataValidationError, MultimodalDataset
from mmib.data.spec import DatasetSpec, ModalitySpec
from mmib.runs import build_datamodule


def _ds(n=6000, task="classification", labels=True, k=4):
    rng = np.random.default_rng(0)
    spec = DatasetSpec("toy", (ModalitySpec("a", "vector", (3,)),), task=task,
                       n_classes=k if task == "classification" else None)
    y = (np.arange(n) % k if task == "classification" else rng.normal(size=n)) if labels else None
    return MultimodalDataset(spec, {"a": rng.normal(size=(n, 3))}, y=y)


@pytest.mark.parametrize("rate", [0.2, 0.4])
def test_flipped_share_on_train_is_the_rate_never_the_same_class_and_val_test_unchanged(rate):
    ds = _ds()
    clean = ds.y.clone()
    dm = MultimodalDataModule(ds, seed=3, train_label_noise=rate)
    tr, va, te = (dm.indices[s] for s in ("train", "val", "test"))
    changed = (ds.y != clean).numpy()
    share = changed[tr].mean()
    assert abs(share - rate) < 3 * np.sqrt(rate * (1 - rate) / len(tr)) + 1e-9, share  # within 3 s.e.
    np.testing.assert_array_equal(np.sort(dm.flipped), np.flatnonzero(changed))  # every flip differs from its class
    assert not changed[va].any() and not changed[te].any()
    torch.testing.assert_close(ds.clean_y, clean)
    # uniform over the other classes: each of the 3 others gets about a third of a class's flips
    old, new = clean.numpy()[dm.flipped], ds.y.numpy()[dm.flipped]
    for c in range(4):
        counts = np.bincount(new[old == c], minlength=4)
        assert counts[c] == 0 and np.delete(counts, c).min() > 0.25 * (old == c).sum()
    # what the loaders deliver: the noisy labels on train, the given ones on test
    batch = next(iter(dm.train_dataloader()))
    torch.testing.assert_close(batch["y"], ds.y[batch["index"]])
    assert bool((dm.split_batch("test")["y"] == clean[te]).all())


def test_deterministic_per_seed_and_nested_across_rates():
    a = MultimodalDataModule(_ds(), seed=1, train_label_noise=0.4)
    b_ds = _ds()
    b = MultimodalDataModule(b_ds, seed=1, train_label_noise=0.4)
    np.testing.assert_array_equal(a.flipped, b.flipped)
    torch.testing.assert_close(a.dataset.y, b_ds.y)
    c = MultimodalDataModule(_ds(), seed=2, train_label_noise=0.4)
    assert not np.array_equal(a.flipped, c.flipped)
    low = MultimodalDataModule(_ds(), seed=1, train_label_noise=0.2)
    np.testing.assert_array_equal(low.indices["train"], a.indices["train"])  # the rate leaves the split alone
    assert set(low.flipped) <= set(a.flipped)
    assert bool((low.dataset.y[low.flipped] == a.dataset.y[low.flipped]).all())


def test_rate_zero_is_the_former_behaviour_and_a_reused_data_set_starts_from_clean_labels():
    ds = _ds()
    clean = ds.y.clone()
    plain = MultimodalDataModule(_ds(), seed=5)
    MultimodalDataModule(ds, seed=5, train_label_noise=0.4)
    again = MultimodalDataModule(ds, seed=5)  # the same data set in a second data module, without noise
    torch.testing.assert_close(ds.y, clean)
    assert ds.clean_y is None and len(again.flipped) == 0
    for s in ("train", "val", "test"):
        np.testing.assert_array_equal(again.indices[s], plain.indices[s])


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, "0.4", True, None])
def test_rate_outside_0_1_is_an_error_naming_the_key(rate):
    with pytest.raises(DataValidationError, match=r"data\.train_label_noise: expected a probability in \[0, 1\)"):
        MultimodalDataModule(_ds(n=100), train_label_noise=rate)


@pytest.mark.parametrize("kw, what", [({"task": "regression"}, "is a regression task"),
                                      ({"labels": False}, "has no labels y")])
def test_data_without_a_class_label_is_an_error(kw, what):
    with pytest.raises(DataValidationError, match=f"data.train_label_noise = 0.4: needs a class label.*{what}"):
        MultimodalDataModule(_ds(n=100, **kw), train_label_noise=0.4)
    MultimodalDataModule(_ds(n=100, **kw), train_label_noise=0.0)  # no noise asked: fine


def test_the_config_key_reaches_the_data_module():
    cfg = compose_config(["data=xor_align", "data.train_label_noise=0.3", "data.n_samples=1000"])
    dm = build_datamodule(cfg)
    assert dm.train_label_noise == 0.3 and len(dm.flipped) > 0
    assert build_datamodule(compose_config(["data=xor_align", "data.n_samples=1000"])).train_label_noise == 0.0


def test_numpy_scalars_are_accepted_as_rates():
    dm = MultimodalDataModule(_ds(n=100), train_label_noise=np.float32(0.25))
    assert type(dm.train_label_noise) is float and abs(dm.train_label_noise - 0.25) < 1e-7
    assert MultimodalDataModule(_ds(n=100), train_label_noise=np.float64(0.0)).train_label_noise == 0.0
