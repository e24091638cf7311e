"""mmib.eval.protocols.plots: the UMAP panels with and without the viz extra, and the t-SNE iterations option."""

import numpy as np
import pytest

from mmib.errors import MMIBError
from mmib.eval.protocols import (
    EvalContext,
)

from ..conftest import IdentityMethod


# ------------------------------------------------------------------------------------------------ UMAP (viz extra)
class _FakeUMAP:
    """Stands in for umap.UMAP: records its arguments and returns a fixed 2-D embedding."""

    calls: list = []

    def __init__(self, n_components=2, random_state=None):
        self.n_components, self.random_state = n_components, random_state

    def fit_transform(self, x):
        _FakeUMAP.calls.append((self.n_components, self.random_state, x.shape))
        t = np.arange(len(x), dtype=np.float64)
        return np.stack([np.cos(t), np.sin(t)], 1)


def _fake_umap_module():
    import importlib.machinery
    import types

    mod = types.ModuleType("umap")
    mod.__spec__ = importlib.machinery.ModuleSpec("umap", None)  # so importlib.util.find_spec sees it as installed
    mod.UMAP = _FakeUMAP
    return mod


@pytest.mark.parametrize("setting", [True, "auto"])
def test_umap_plot_with_the_extra_installed(latent_dm, tmp_path, monkeypatch, png_ok, setting):
    import sys

    from mmib.eval.protocols import run_plots

    monkeypatch.setitem(sys.modules, "umap", _fake_umap_module())
    _FakeUMAP.calls = []
    ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm, seed=4, out_dir=tmp_path)
    res = run_plots(ctx, {"curves": False, "tsne": False, "umap": setting, "max_points": 50})
    assert res["plots"] == {"umap": "plots/umap.png"}
    assert not any("UMAP skipped" in n for n in res["notes"])
    png_ok(tmp_path / "plots" / "umap.png")
    # one call per panel (the method's representation, the raw features), seeded, on the sampled points
    assert _FakeUMAP.calls == [(2, 4, (50, 19)), (2, 4, (50, 19))]


def test_umap_without_the_extra(latent_dm, tmp_path, monkeypatch):
    import sys

    from mmib.errors import MissingDependencyError
    from mmib.eval.protocols import run_plots

    monkeypatch.setitem(sys.modules, "umap", None)  # importing umap fails, whether or not it is installed
    ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm, out_dir=tmp_path)
    with pytest.raises(MissingDependencyError, match=r"needs the optional package 'umap': pip install 'mmib\[viz\]'"):
        run_plots(ctx, {"curves": False, "tsne": False, "umap": True, "max_points": 50})
    res = run_plots(ctx, {"curves": False, "tsne": False, "umap": "auto", "max_points": 50})
    assert res["plots"] == {}
    assert "UMAP skipped: install the 'viz' extra (pip install 'mmib[viz]')" in res["notes"]


def test_tsne_iterations_option(latent_dm, tmp_path, monkeypatch):
    """plots.tsne_iterations reaches the t-SNE (default 350): the exact one of mmib.eval.tsne up to EXACT_MAX_POINTS
    rows, scikit-learn's TSNE above; below its 250-step minimum it is an error."""
    from sklearn import manifold

    from mmib.eval import tsne
    from mmib.eval.protocols import run_plots

    seen = []
    fit, exact = manifold.TSNE.fit_transform, tsne.tsne_exact

    def recording(self, x, *a, **k):
        seen.append(("sklearn", len(x), self.max_iter))
        return fit(self, x, *a, **k)

    def recording_exact(x, perplexity, iterations, seed):
        seen.append(("exact", len(x), iterations))
        return exact(x, perplexity, iterations, seed)

    monkeypatch.setattr(manifold.TSNE, "fit_transform", recording)
    monkeypatch.setattr(tsne, "tsne_exact", recording_exact)
    ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm, seed=0, out_dir=tmp_path)
    assert run_plots(ctx, {"curves": False, "umap": False, "max_points": 60})["plots"] == {"tsne": "plots/tsne.png"}
    run_plots(ctx, {"curves": False, "umap": False, "max_points": 60, "tsne_iterations": 1000})
    # one map per panel: the representation and the raw features
    assert seen == [("exact", 60, 350)] * 2 + [("exact", 60, 1000)] * 2
    seen.clear()
    monkeypatch.setattr(tsne, "EXACT_MAX_POINTS", 59)
    run_plots(ctx, {"curves": False, "umap": False, "max_points": 60, "tsne_iterations": 260})
    assert seen == [("sklearn", 60, 260)] * 2
    with pytest.raises(MMIBError, match="tsne_iterations must be an integer >= 250"):
        run_plots(ctx, {"curves": False, "umap": False, "tsne_iterations": 100})
