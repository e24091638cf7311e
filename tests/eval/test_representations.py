"""mmib.eval.representations: representation names checked against the method's capabilities, each representation
of a batch computed from the Method interface (identity method: known answers), rows with a missing modality
dropped, and a split extracted batch by batch equal to one pass."""

import numpy as np
import pytest
import torch

from mmib.errors import MMIBError, UnknownNameError
from mmib.eval.representations import (
    MissingCapabilityError,
    check_representation,
    extract,
    extract_split,
    method_representation,
    method_representations,
    needs_capability,
    raw_representation,
    select_present,
)

from .conftest import IdentityMethod, PredictingMethod

MODS = ("a", "b", "c")


def test_needs_capability():
    assert [needs_capability(r) for r in ("fused", "predict", "component:S", "concat", "rep:a", "raw")] == [
        "fuse", "predict", "components", None, None, None]


def test_check_representation(latent_dm):
    m = IdentityMethod(latent_dm.spec)
    for r in ("concat", "rep:a", "emb:c", "fused", "component:A", "raw", "raw:b"):
        check_representation(m, r, MODS)
    with pytest.raises(UnknownNameError, match="modality of representation 'rep:d'"):
        check_representation(m, "rep:d", MODS)
    with pytest.raises(MMIBError, match="'component:<name>' needs a component name"):
        check_representation(m, "component:", MODS)
    with pytest.raises(MMIBError, match="unknown representation 'hidden'; valid: concat, rep:<modality>"):
        check_representation(m, "hidden", MODS)
    with pytest.raises(MissingCapabilityError, match=r"method 'identity_test' has no predictions \(representation"):
        check_representation(m, "predict", MODS)
    check_representation(PredictingMethod(latent_dm.spec), "predict", MODS)
    with pytest.raises(MMIBError, match="representation 'fused' needs a method"):
        check_representation(None, "fused", MODS)


def test_each_representation_of_a_batch(latent_dm):
    m = IdentityMethod(latent_dm.spec)
    batch = latent_dm.dataset.get_batch(np.arange(5))
    x = batch["x"]
    out = method_representations(m, batch, ["a", "c"], ["concat", "rep:c", "emb:c", "fused", "component:B", "raw:b"])
    torch.testing.assert_close(out["concat"], torch.cat([x["a"], x["c"]], 1))
    torch.testing.assert_close(out["rep:c"], x["c"])
    torch.testing.assert_close(out["emb:c"], torch.nn.functional.pad(x["c"], (0, 5)))  # the identity's 8-d space
    torch.testing.assert_close(out["fused"], torch.cat([x["a"], x["c"]], 1))
    torch.testing.assert_close(out["component:B"], x["b"])
    torch.testing.assert_close(out["raw:b"], x["b"])
    torch.testing.assert_close(raw_representation(batch, ["c", "a"]), torch.cat([x["c"], x["a"]], 1))
    torch.testing.assert_close(method_representation(m, batch, ["b"], "rep:b"), x["b"])
    with pytest.raises(UnknownNameError, match="component of method 'identity_test'"):
        method_representations(m, batch, ["a"], ["component:S"])
    with pytest.raises(MMIBError, match="representation 'concat' needs a method"):
        method_representations(None, batch, ["a"], ["concat"])


def test_a_representation_with_the_wrong_batch_size_is_named(latent_dm):
    class Short(IdentityMethod):
        name = "short_test"

        def fuse(self, batch, modalities=None):
            return torch.zeros(2, 3)

    batch = latent_dm.dataset.get_batch(np.arange(5))
    with pytest.raises(MMIBError, match=r"method 'short_test': representation 'fused' is not a \(N, d\) tensor for "
                                        "a batch of 5 samples"):
        method_representations(Short(latent_dm.spec), batch, ["a"], ["fused"])


def test_select_present():
    batch = {"mask": {"a": torch.tensor([True, False, True]), "b": torch.tensor([True, True, False]),
                      "c": torch.tensor([True, True, True])}}
    assert select_present(batch, ["a", "b"]).tolist() == [True, False, False]
    assert select_present(batch, ["c"]) is None and select_present({}, ["a"]) is None


def test_extract_split_drops_rows_with_a_missing_modality_and_is_batch_size_free(latent_dm, monkeypatch):
    m = IdentityMethod(latent_dm.spec)
    whole = extract_split(m, latent_dm, "test", ["a", "b"], ["concat", "raw"], batch_size=10_000)
    small = extract_split(m, latent_dm, "test", ["a", "b"], ["concat", "raw"], batch_size=7)
    idx = latent_dm.indices["test"]
    np.testing.assert_array_equal(whole.index, idx)
    np.testing.assert_array_equal(small.index, idx)
    for r in ("concat", "raw"):
        np.testing.assert_array_equal(small.features[r], whole.features[r])
    np.testing.assert_array_equal(whole.y, latent_dm.dataset.y.numpy()[idx])
    np.testing.assert_array_equal(whole.latents["za"], small.latents["za"])
    assert whole.n_dropped == 0
    feats, y = extract(None, latent_dm, "test", ["a"], "concat")  # no method: raw features
    np.testing.assert_array_equal(feats, latent_dm.dataset.get_batch(idx)["x"]["a"].numpy())

    real = latent_dm.dataset.get_batch

    def with_missing_b(rows):
        b = real(rows)
        b["mask"] = {"b": torch.as_tensor(np.asarray(rows) % 2 == 0)}
        return b

    monkeypatch.setattr(latent_dm.dataset, "get_batch", with_missing_b)
    sf = extract_split(m, latent_dm, "test", ["a", "b"], ["concat"], batch_size=16)
    assert sf.n_dropped == int((idx % 2 == 1).sum()) and (sf.index % 2 == 0).all()
    assert len(sf.features["concat"]) == len(sf.index) == len(sf.y)
    assert extract_split(m, latent_dm, "test", ["a"], ["concat"]).n_dropped == 0  # b not requested


def test_extract_split_errors(latent_dm):
    class NaNMethod(IdentityMethod):
        name = "nan_test"

        def fuse(self, batch, modalities=None):
            return torch.full((batch["x"]["a"].shape[0], 2), float("nan"))

    with pytest.raises(MMIBError, match=r"the 'fused' representation \(method 'nan_test'\) of split 'test' holds NaN"):
        extract_split(NaNMethod(latent_dm.spec), latent_dm, "test", ["a"], ["fused"])
    latent_dm.indices["val"] = latent_dm.indices["val"][:0]
    with pytest.raises(MMIBError, match="data set 'latent_toy': the val split is empty"):
        extract_split(IdentityMethod(latent_dm.spec), latent_dm, "val", ["a"], ["concat"])
