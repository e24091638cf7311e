"""A small data set with known information structure and a transparent test method (identity encoders)."""

import numpy as np
import pytest
import torch

from mmib.data.datamodule import MultimodalDataModule
from mmib.data.dataset import MultimodalDataset
from mmib.data.spec import DatasetSpec, ModalitySpec
from mmib.data.synthetic.cox_sim import make_cox_sim
from mmib.methods.base import Method
from mmib.methods.registry import build_method
from mmib.objectives.base import LossOutput


def make_latent_dataset(n: int = 600, seed: int = 0) -> MultimodalDataset:
    """a holds za + shared, b holds zb + shared (b ≈ a's shared part: retrievable), c holds a continuous latent."""
    rng = np.random.default_rng(seed)
    za, zb, shared = rng.integers(0, 4, n), rng.integers(0, 4, n), rng.integers(0, 3, n)
    cont = rng.normal(size=n)
    ca, cb, cs = rng.normal(size=(4, 8)) * 3, rng.normal(size=(4, 8)) * 3, rng.normal(size=(3, 8)) * 3
    sample_key = rng.normal(size=(n, 8)) * 2  # per-sample detail shared by a and b: what retrieval finds
    a = ca[za] + cs[shared] + sample_key + 0.3 * rng.normal(size=(n, 8))
    b = cb[zb] + cs[shared] + sample_key + 0.3 * rng.normal(size=(n, 8))
    c = np.stack([cont, cont**2, rng.normal(size=n)], 1) + 0.1 * rng.normal(size=(n, 3))
    spec = DatasetSpec("latent_toy", (ModalitySpec("a", "vector", (8,)), ModalitySpec("b", "vector", (8,)),
                                     ModalitySpec("c", "vector", (3,))), task="classification", n_classes=3,
                       latents={"za": 4, "zb": 4, "shared": 3, "cont": 0})
    return MultimodalDataset(spec, {"a": a, "b": b, "c": c}, y=shared,
                             latents={"za": za, "zb": zb, "shared": shared, "cont": cont})


class IdentityMethod(Method):
    """Representations = the inputs (so the answer of every protocol is known); fuse = concat; components = a, b."""

    name = "identity_test"

    def __init__(self, spec, cfg=None, encoder_cfg=None):
        super().__init__(spec, cfg or {}, encoder_cfg)
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def embed(self, batch, modalities=None, space="representation"):
        mods = self.modalities_of(batch, modalities)
        out = {m: batch["x"][m] + 0 * self.dummy for m in mods}
        if space == "embedding":  # one shared 8-d space: zero-pad c
            out = {m: torch.nn.functional.pad(v, (0, 8 - v.shape[1])) for m, v in out.items()}
        return out

    def loss(self, batch):
        return LossOutput(self.dummy * 0)

    def fuse(self, batch, modalities=None):
        e = self.embed(batch, modalities)
        return torch.cat(list(e.values()), 1)

    def components(self, batch, modalities=None):
        return {"A": batch["x"]["a"], "B": batch["x"]["b"]}


class PredictingMethod(IdentityMethod):
    """Also predicts: the class whose index is the rounded first feature of c (a deliberately poor predictor)."""

    name = "predicting_test"
    supervised = True

    def predict(self, batch, modalities=None):
        n = batch["x"]["c"].shape[0]
        logits = torch.zeros(n, 3)
        logits[torch.arange(n), 0] = 1.0
        return logits


@pytest.fixture
def latent_dm():
    return MultimodalDataModule(make_latent_dataset(), batch_size=64, seed=0)


@pytest.fixture(scope="session")
def trained_cox():
    """A COX method on the cox_sim testbed after its first selection (eval mode), with its data module: shared by
    the OOM metric tests (test_oom.py) and the oom protocol tests (protocols/test_oom.py)."""
    ds = make_cox_sim(n_im=150, n_oom=150, n_val=20, n_test=60, seed=0)
    dm = MultimodalDataModule(ds, batch_size=32, split_by="predefined")
    meth = build_method("cox", ds.spec, {"name": "cox", "head_fit": {"steps": 20, "lr": 0.05}},
                        {"vector": {"type": "mlp", "hidden": [16]}})
    meth.build_cache(dm.split_batch("train"), len(ds))
    meth.refresh(0)
    meth.eval()
    return meth, dm
