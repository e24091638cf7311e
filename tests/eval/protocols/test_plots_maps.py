"""The plots protocol's maps computed ahead (in a thread beside the probes) and the disk cache of the raw-features
map: the same coordinates as drawing them directly."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from mmib.eval import plots
from mmib.eval.protocols import EvalContext
from mmib.eval.protocols.plots import run_plots, start_maps

from ..conftest import IdentityMethod

OPTS = {"curves": False, "umap": False, "max_points": 60}


def _drawn(monkeypatch) -> list:
    """The coordinates of every panel drawn by plot_embedding_2d (as given, or computed there)."""
    seen = []
    draw = plots.plot_embedding_2d

    def keep(panels, colour, path, how="tsne", colour_name="label", discrete=True, seed=0, iterations=350,
             coords=None):
        full = {t: (coords[t] if coords and t in coords else plots.embed_2d(x, how, seed, iterations))
                for t, x in panels.items()}
        seen.append(full)
        return draw(panels, colour, path, how, colour_name, discrete, seed, iterations, coords=full)

    monkeypatch.setattr(plots, "plot_embedding_2d", keep)
    return seen


def test_maps_started_ahead_equal_the_direct_ones(latent_dm, tmp_path, monkeypatch):
    seen = _drawn(monkeypatch)
    direct = EvalContext(IdentityMethod(latent_dm.spec), latent_dm, seed=3, out_dir=tmp_path / "a")
    assert run_plots(direct, OPTS)["plots"] == {"tsne": "plots/tsne.png"}
    ahead = EvalContext(IdentityMethod(latent_dm.spec), latent_dm, seed=3, out_dir=tmp_path / "b")
    with ThreadPoolExecutor(1) as pool:
        start_maps(ahead, OPTS, pool)
        assert len(ahead.background) == 1
        assert all(hasattr(f, "result") for f in next(iter(ahead.background.values())).values())  # the thread's
        assert run_plots(ahead, OPTS)["plots"] == {"tsne": "plots/tsne.png"}
    assert ahead.background == {}  # used once
    assert len(seen) == 2 and list(seen[0]) == list(seen[1])
    for title in seen[0]:
        np.testing.assert_array_equal(seen[0][title], seen[1][title])


def test_curves_started_ahead(latent_dm, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(plots, "find_metrics_csv", lambda run: [run])
    monkeypatch.setattr(plots, "plot_training_curves", lambda run, path: calls.append((run, path)) or path)
    ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm, out_dir=tmp_path, run_dir=tmp_path / "run")
    with ThreadPoolExecutor(1) as pool:
        start_maps(ctx, {"tsne": False, "umap": False}, pool)
        assert list(ctx.background) == [("curves", tmp_path / "run")]
        res = run_plots(ctx, {"tsne": False, "umap": False})
    assert res["plots"] == {"training_curves": "plots/training_curves.png"} and ctx.background == {}
    assert calls == [(tmp_path / "run", tmp_path / "plots" / "training_curves.png")]  # drawn once, in the thread


def test_nothing_started_without_maps_or_output(latent_dm, tmp_path):
    with ThreadPoolExecutor(1) as pool:
        for out, opts in ((tmp_path, {**OPTS, "tsne": False}), (None, OPTS), (tmp_path, {**OPTS, "tsne_iterations": 9}),
                          (tmp_path, {**OPTS, "representation": "component:none"})):
            ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm, out_dir=out)
            start_maps(ctx, opts, pool)
            assert ctx.background == {}


def test_cached_map(tmp_path, monkeypatch):
    x = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    first = plots.cached_embed_2d(x, "tsne", 1, 250, folder=tmp_path)
    np.testing.assert_array_equal(first, plots.embed_2d(x, "tsne", 1, 250))
    files = list(tmp_path.rglob("*.npy"))
    assert len(files) == 1
    np.testing.assert_array_equal(np.load(files[0], allow_pickle=False), first)

    calls = []
    compute = plots.embed_2d

    def counting(*a, **k):
        calls.append(a[1:])
        return compute(*a, **k)

    monkeypatch.setattr(plots, "embed_2d", counting)
    np.testing.assert_array_equal(plots.cached_embed_2d(x, "tsne", 1, 250, folder=tmp_path), first)
    assert calls == []  # read back
    plots.cached_embed_2d(x, "tsne", 2, 250, folder=tmp_path)  # another seed, another iteration count, other data:
    plots.cached_embed_2d(x, "tsne", 1, 260, folder=tmp_path)  # each its own entry
    plots.cached_embed_2d(x[:-1], "tsne", 1, 250, folder=tmp_path)
    assert len(calls) == 3 and len(list(tmp_path.rglob("*.npy"))) == 4
    files[0].write_bytes(b"not a numpy file")  # unreadable: computed again and rewritten
    np.testing.assert_array_equal(plots.cached_embed_2d(x, "tsne", 1, 250, folder=tmp_path), first)
    assert len(calls) == 4
    np.testing.assert_array_equal(np.load(files[0], allow_pickle=False), first)


def test_raw_map_cached_only_with_the_cache_on(latent_dm, tmp_path, monkeypatch):
    from mmib.eval.probe.cache import ProbeCache

    monkeypatch.setenv("MMIB_CACHE_DIR", str(tmp_path / "cache"))
    ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm, out_dir=tmp_path / "a")
    run_plots(ctx, OPTS)
    assert not (tmp_path / "cache").exists()
    ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm, out_dir=tmp_path / "b", probe_cache=ProbeCache())
    run_plots(ctx, OPTS)
    assert len(list((tmp_path / "cache" / "maps").rglob("*.npy"))) == 1  # the raw features' map only


def test_figures_drawn_in_the_pool_and_waited_for(latent_dm, tmp_path):
    import threading

    seen = []

    def fig(path, value):
        seen.append((threading.current_thread().name, path, value))

    now = EvalContext(IdentityMethod(latent_dm.spec), latent_dm, out_dir=tmp_path)
    now.draw(fig, "a", value=1)
    assert seen == [(threading.current_thread().name, "a", 1)]  # no pool: drawn at once
    with ThreadPoolExecutor(1, thread_name_prefix="figs") as pool:
        ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm, out_dir=tmp_path, pool=pool)
        ctx.draw(fig, "b", value=2)
        ctx.draw(lambda: 1 / 0)
        try:
            ctx.finish_drawing()
        except ZeroDivisionError:
            pass
        else:
            raise AssertionError("the figure's error was not raised")
    assert seen[1][0].startswith("figs") and seen[1][1:] == ("b", 2) and ctx._drawing == []


def test_evaluate_writes_every_figure(latent_dm, tmp_path, png_ok):
    from mmib.eval.evaluate import evaluate

    res = evaluate(IdentityMethod(latent_dm.spec), latent_dm,
                   [{"subsets": {"probe_options": {"max_epochs": 5}}}, "retrieval", {"plots": OPTS}],
                   out_dir=tmp_path, progress=False, probe_cache=False)
    names = {k for r in res["protocols"].values() for k in r["plots"]}
    assert names == {"subsets_heatmap", "retrieval", "tsne"}
    for n in names:
        png_ok(tmp_path / "plots" / f"{n}.png")


def test_map_points_a_seeded_capped_subsample(latent_dm, tmp_path):
    """At most max_points rows, drawn by the seed without replacement, in split order, the same rows in both panels
    and their colours; every row when the split is smaller."""
    from mmib.eval.protocols.plots import PlotOptions, _map_job

    def job(seed, max_points):
        ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm, seed=seed, out_dir=tmp_path)
        full = ctx.features("test", ctx.modalities, ["concat", "raw"])
        return _map_job(ctx, PlotOptions(max_points=max_points)), full

    a, full = job(0, 40)
    n = len(full.index)
    assert n > 40
    rep, raw = a["panels"].values()
    assert len(rep) == len(raw) == len(a["colour"]) == 40
    take = [int(np.flatnonzero((full.features["raw"] == row).all(1))[0]) for row in raw]
    assert take == sorted(set(take))  # distinct rows, in the split's order
    np.testing.assert_array_equal(rep, full.features["concat"][take])  # the same rows in both panels
    np.testing.assert_array_equal(a["colour"], full.y.reshape(n, -1)[take, 0])
    again, _ = job(0, 40)
    np.testing.assert_array_equal(again["panels"]["raw features"], raw)  # seeded
    other, _ = job(1, 40)
    assert not np.array_equal(other["panels"]["raw features"], raw)
    whole, _ = job(0, n)
    np.testing.assert_array_equal(whole["panels"]["raw features"], full.features["raw"])
