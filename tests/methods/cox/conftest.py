"""Shared by the COX tests: a small cox_sim data set, a COX method (or baseline) with short inner fits, and the data
module over the data set's predefined splits."""

import pytest

from mmib.data.datamodule import MultimodalDataModule
from mmib.data.synthetic.cox_sim import make_cox_sim
from mmib.methods.registry import build_method


@pytest.fixture
def small_cox_sim():
    """``small_cox_sim(**kw)`` → make_cox_sim with 120 IM and 120 OOM rows, 20 validation and 30 test rows."""

    def make(**kw):
        return make_cox_sim(n_im=120, n_oom=120, n_val=20, n_test=30, **kw)

    return make


@pytest.fixture
def cox_method():
    """``cox_method(ds, **cfg)`` → the method ``cfg["name"]`` (default "cox") on ``ds``: short head fit, centroid and
    MMD steps, an MLP encoder with one hidden layer of 16; ``cfg`` overrides the method's options."""

    def build(ds, **cfg):
        base = {"name": "cox", "head_fit": {"steps": 10, "lr": 0.05}, "centroid_steps": 5, "mmd_steps": 5}
        base.update(cfg)
        return build_method(base["name"], ds.spec, base, {"vector": {"type": "mlp", "hidden": [16]}})

    return build


@pytest.fixture
def cox_dm():
    """``cox_dm(ds, bs=32)`` → the data module over ``ds``'s predefined splits (seed 0)."""

    def build(ds, bs=32):
        return MultimodalDataModule(ds, batch_size=bs, split_by="predefined", seed=0)

    return build
