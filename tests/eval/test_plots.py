"""The evaluation's figures: drawn with fixed margins (no layout engine), every drawn element inside the canvas."""

import itertools

import matplotlib.image as mpimg
import numpy as np
import pytest

from mmib.eval import plots


def _inside(fig) -> None:
    """Everything drawn lies within the canvas (fixed margins must not clip labels): the tight box of the drawn
    artists, in inches, inside the figure's size."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    bb = fig.get_tightbbox(canvas.get_renderer())
    w, h = fig.get_size_inches()
    assert bb.x0 >= -0.01 and bb.y0 >= -0.01 and bb.x1 <= w + 0.01 and bb.y1 <= h + 0.01, (bb, w, h)


@pytest.fixture
def capture(monkeypatch):
    """Keep the figures the plotting functions save, to inspect them."""
    figs = []
    save = plots._save

    def keep(fig, path):
        figs.append(fig)
        return save(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    return figs


def test_training_curves_one_panel_per_logged_quantity(tmp_path, capture):
    logs = tmp_path / "run" / "logs" / "version_0"
    logs.mkdir(parents=True)
    rows = ["epoch,step,train/loss_epoch,train/loss_step,val/loss,val/acc,train/temperature"]
    rows += [f"{e},{10 * e},{2.0 - 0.1 * e},{2.1},{2.2 - 0.1 * e},{0.5 + 0.01 * e},0.01" for e in range(5)]
    (logs / "metrics.csv").write_text("\n".join(rows) + "\n")
    out = plots.plot_training_curves(tmp_path / "run", tmp_path / "curves.png")
    assert out is not None and mpimg.imread(out).ndim == 3
    fig = capture[-1]
    assert sorted(ax.get_title() for ax in fig.axes) == ["acc", "loss", "temperature"]  # only the logged ones
    _inside(fig)
    # one legend for the figure; a split has the same colour in every panel (acc: val only; temperature: train only)
    assert len(fig.legends) == 1 and all(ax.get_legend() is None for ax in fig.axes)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["train", "val"]
    colours = {(ax.get_title(), line.get_color()) for ax in fig.axes for line in ax.get_lines()}
    assert colours == {("loss", "C0"), ("loss", "C1"), ("acc", "C1"), ("temperature", "C0")}


@pytest.mark.parametrize("mods", [["resp", "ecg", "bvp"], ["a", "b", "c", "d", "e", "f"]])
def test_subset_heatmap_labels_inside(tmp_path, capture, mods):
    subsets = [c for k in range(1, len(mods) + 1) for c in itertools.combinations(mods, k)]
    rows = [{"subset": list(s), "probe": "linear", "source": src, "metrics": {"accuracy": 0.5 + 0.4 * i / len(subsets)}}
            for i, s in enumerate(subsets) for src in ("method", "raw")]
    plots.plot_subset_heatmap({"modalities": mods, "rows": rows, "probe_description": "linear"}, tmp_path / "h.png")
    assert mpimg.imread(tmp_path / "h.png").ndim == 3
    _inside(capture[-1])


@pytest.mark.parametrize("colour", ["label", "latent", None])
def test_maps_one_legend_or_colour_bar_inside(tmp_path, capture, colour):
    rng = np.random.default_rng(0)
    panels = {"method (concat)": rng.normal(size=(40, 6)), "raw features": rng.normal(size=(40, 9))}
    coords = {k: rng.normal(size=(40, 2)) for k in panels}
    c = {"label": np.arange(40) % 10, "latent": rng.normal(size=40), None: None}[colour]
    plots.plot_embedding_2d(panels, c, tmp_path / "m.png", discrete=colour == "label", coords=coords)
    assert mpimg.imread(tmp_path / "m.png").ndim == 3
    fig = capture[-1]
    maps = [ax for ax in fig.axes if ax.get_title()]
    assert len(maps) == 2 and [ax.get_legend() is not None for ax in maps] == [False, colour == "label"]
    assert len(fig.axes) == 2 + (colour == "latent")  # one colour bar for a continuous colour
    _inside(fig)


@pytest.mark.parametrize("mods", [["a", "b"], ["fou", "fac", "kar", "pix", "zer", "mor"]])
def test_retrieval_labels_inside(tmp_path, capture, mods):
    rows = [{"source": "method", "direction": f"{'+'.join(m for m in mods if m != t)}->{t}",
             "metrics": {"R@1": 0.2, "R@5": 0.5, "R@10": 0.7, "mAP": 0.3},
             "chance": {"R@1": 0.003, "R@5": 0.017, "R@10": 0.033, "mAP": 0.02}} for t in mods]
    plots.plot_retrieval({"rows": rows}, tmp_path / "r.png")
    assert mpimg.imread(tmp_path / "r.png").ndim == 3
    fig = capture[-1]
    # the chance levels: one dashed collection per metric, a tick per row
    dashed = [c for c in fig.axes[0].collections if len(c.get_segments()) == len(mods)]
    assert len(dashed) == 4
    _inside(fig)
