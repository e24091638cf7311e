"""mmib.eval.protocols.context: the evaluation context extracts each (split, modalities, representation) once,
stores method representations on disk per checkpoint key and reads them back (raw features never), re-extracts
from an unreadable file, and gives plot paths, capabilities and component names."""

import numpy as np
import pytest

import mmib.eval.protocols.context as context_mod
from mmib.eval.protocols import EvalContext

from ..conftest import IdentityMethod, PredictingMethod


@pytest.fixture
def counting(monkeypatch):
    calls = []
    real = context_mod.extract_split

    def extract(method, dm, split, mods, reps):
        calls.append((split, tuple(mods), tuple(reps)))
        return real(method, dm, split, mods, reps)

    monkeypatch.setattr(context_mod, "extract_split", extract)
    return calls


def test_features_are_extracted_once_per_split_modalities_and_name(latent_dm, counting):
    ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm)
    sf = ctx.features("test", ["b", "a"], ["concat"])
    assert counting == [("test", ("a", "b"), ("concat",))]  # modalities in the spec's order
    x = latent_dm.dataset.get_batch(latent_dm.indices["test"])["x"]
    np.testing.assert_allclose(sf.features["concat"], np.concatenate([x["a"].numpy(), x["b"].numpy()], 1))
    assert ctx.features("test", ["a", "b"], ["concat"]) is sf and len(counting) == 1
    both = ctx.features("test", ["a", "b"], ["concat", "rep:a"])
    assert counting[-1] == ("test", ("a", "b"), ("rep:a",)) and set(both.features) == {"concat", "rep:a"}
    ctx.features("train", ["a", "b"], ["concat"])
    assert len(counting) == 3


def test_disk_cache_per_checkpoint_key(latent_dm, counting, tmp_path):
    def ctx(key="ckpt-1"):
        return EvalContext(IdentityMethod(latent_dm.spec), latent_dm, cache_dir=tmp_path, cache_key=key)

    first = ctx().features("val", ["a", "c"], ["concat", "raw"])
    assert len(counting) == 1 and len(list(tmp_path.glob("val-*.npz"))) == 1  # raw features are not cached
    again = ctx().features("val", ["a", "c"], ["concat", "raw"])
    assert counting[-1] == ("val", ("a", "c"), ("raw",))  # concat read back from the file, raw extracted
    np.testing.assert_array_equal(again.features["concat"], first.features["concat"])
    np.testing.assert_array_equal(again.index, first.index)
    np.testing.assert_array_equal(again.y, first.y)
    assert set(again.latents) == set(first.latents) and again.n_dropped == first.n_dropped
    ctx("ckpt-2").features("val", ["a", "c"], ["concat"])  # another checkpoint: extracted again
    assert counting[-1] == ("val", ("a", "c"), ("concat",)) and len(list(tmp_path.glob("val-*.npz"))) == 2
    for f in tmp_path.glob("val-*.npz"):
        f.write_bytes(b"not a zip file")
    n = len(counting)
    ctx().features("val", ["a", "c"], ["concat"])  # unreadable: extracted again, not an error
    assert len(counting) == n + 1


def test_plot_paths_capabilities_and_component_names(latent_dm, tmp_path):
    ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm)
    assert ctx.plot_path("tsne") is None and ctx.modalities == ("a", "b", "c") and ctx.spec is latent_dm.spec
    assert ctx.capable("fuse") and ctx.capable("components") and not ctx.capable("predict")
    assert not ctx.capable("teleport")
    assert EvalContext(PredictingMethod(latent_dm.spec), latent_dm).capable("predict")
    assert ctx.component_names() == ["A", "B"]
    out = EvalContext(IdentityMethod(latent_dm.spec), latent_dm, out_dir=tmp_path / "e")
    path, rel = out.plot_path("umap")
    assert path == tmp_path / "e" / "plots" / "umap.png" and rel == "plots/umap.png" and path.parent.is_dir()
