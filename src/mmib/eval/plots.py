"""Plots of the evaluation suite (matplotlib, PNG), drawn on :class:`matplotlib.figure.Figure` objects without pyplot
so they work headless and leave no global state.

* :func:`plot_training_curves` — every epoch-level metric of a run's ``logs/version_*/metrics.csv`` (train vs val);
* :func:`plot_embedding_2d` — t-SNE (scikit-learn) or UMAP (``viz`` extra) of representations, coloured by label or
  latent;
* :func:`plot_subset_heatmap` — the modality-subset table as a heatmap with a membership grid;
* :func:`plot_probe_matrix` — representation × latent probe matrix, coloured by the gain over chance;
* :func:`plot_retrieval` — retrieval R@k / mAP per direction with the chance level;
* :func:`plot_leaderboard` — a bench leaderboard metric (mean ± std over seeds).
"""

from __future__ import annotations

import csv
import importlib.util
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmib.errors import MMIBError


def _figure(w: float, h: float, margins: tuple[float, float, float, float] | None = None, wspace: float = 0.3,
            hspace: float = 0.3):
    """A figure of ``w`` × ``h`` inches. With ``margins`` (left, right, bottom, top, in inches) the axes are placed
    by those fixed margins; without, by matplotlib's constrained layout, which measures every text once more before
    drawing (about half of a many-panel figure's time)."""
    from matplotlib.figure import Figure

    if margins is None:
        return Figure(figsize=(w, h), dpi=110, layout="constrained")
    fig = Figure(figsize=(w, h), dpi=110)
    left, right, bottom, top = margins
    fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h, wspace=wspace,
                        hspace=hspace)
    return fig


def _few_ticks(ax, integer_x: bool = False) -> None:
    """At most about 4 ticks per axis (tick objects are most of a small panel's drawing time)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=integer_x))
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4))


def _save(fig, path: str | os.PathLike) -> Path:
    from mmib.utils.io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)


# ------------------------------------------------------------------------------------------------ training curves
def find_metrics_csv(run_dir: str | os.PathLike) -> list[Path]:
    """The run's CSV logs, one per start (``logs/version_<k>/metrics.csv``), in version order."""
    logs = Path(run_dir) / "logs"

    def version(p: Path) -> int:
        m = re.search(r"version_(\d+)", p.parent.name)
        return int(m.group(1)) if m else -1

    return sorted(logs.glob("version_*/metrics.csv"), key=version)


def read_epoch_metrics(run_dir: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
    """``{metric: [(epoch, value), ...]}`` of the epoch-level metrics (step-level ``*_step`` columns are dropped);
    a resumed run's later logs override the earlier epochs they repeat."""
    series: dict[str, dict[int, float]] = {}
    for f in find_metrics_csv(run_dir):
        with open(f, newline="") as fh:
            for row in csv.DictReader(fh):
                ep = row.get("epoch")
                if ep in (None, ""):
                    continue
                for k, v in row.items():
                    if k in ("epoch", "step") or v in (None, "") or k.endswith("_step"):
                        continue
                    try:
                        val = float(v)
                    except ValueError:
                        continue
                    series.setdefault(k.removesuffix("_epoch"), {})[int(float(ep))] = val
    return {k: sorted(d.items()) for k, d in series.items()}


def plot_training_curves(run_dir: str | os.PathLike, path: str | os.PathLike, max_panels: int = 12) -> Path | None:
    """One panel per logged quantity (``loss`` first), train and val together. None when nothing was logged."""
    series = read_epoch_metrics(run_dir)
    if not series:
        return None
    names: dict[str, dict[str, list[tuple[int, float]]]] = {}
    for k, v in series.items():
        split, _, name = k.partition("/") if "/" in k else ("", "", k)
        names.setdefault(name, {})[split or "value"] = v
    order = sorted(names, key=lambda n: (n != "loss", n))[:max_panels]
    cols = min(4, len(order))
    rows = math.ceil(len(order) / cols)
    fig = _figure(3.2 * cols, 2.4 * rows, margins=(0.6, 0.15, 0.45, 0.45), wspace=0.4, hspace=0.6)
    splits = sorted({split for name in order for split in names[name]})
    colour = {split: f"C{i}" for i, split in enumerate(splits)}  # the same colour for a split in every panel
    handles = {}
    for i, name in enumerate(order):  # only the panels drawn are created
        ax = fig.add_subplot(rows, cols, i + 1)
        for split, pts in sorted(names[name].items()):
            e, v = zip(*pts)
            (handles[split],) = ax.plot(e, v, marker="o" if len(e) < 30 else None, ms=3, color=colour[split])
        ax.set_title(name, fontsize=9, y=1.0, pad=4)  # a fixed title position: no per-draw tick measurement
        ax.set_xlabel("epoch", fontsize=8, labelpad=1)
        ax.tick_params(labelsize=7)
        _few_ticks(ax, integer_x=True)
        ax.ticklabel_format(axis="y", useOffset=False)  # an offset label would sit on the fixed-position title
    fig.suptitle(f"training curves: {Path(run_dir).name}", fontsize=10)
    # one legend for the figure, in the top margin (one per panel was a sixth of the figure's drawing time)
    fig.legend([handles[s] for s in splits], splits, loc="upper left", ncol=len(splits), fontsize=7, frameon=False,
               borderaxespad=0.5)
    return _save(fig, path)


# ------------------------------------------------------------------------------------------------ 2-D maps
def umap_available() -> bool:
    return importlib.util.find_spec("umap") is not None


#: t-SNE iterations of the evaluation's maps (scikit-learn's default is 1000; the first 250 are its early
#: exaggeration). On the 6-view digits' test split (300 rows; 2-epoch ova_ib runs, seeds 0 and 1) the maps after 350
#: have the trustworthiness (10 neighbours) of those after 500 within 0.001 (0.993 / 0.990 and 0.994 / 0.984 for the
#: representation / raw features) and 5-NN label accuracy within 0.004, at 0.45–0.50 s per map instead of 0.60–0.64 s
#: with scikit-learn's Barnes–Hut t-SNE (docs/results/speed.md; 500 had the quality of 1000; the exact t-SNE of
#: :mod:`mmib.eval.tsne`, used up to 700 points, takes a third of that); ``plots.tsne_iterations`` sets another number.
TSNE_ITERATIONS = 350


def embed_2d(x: np.ndarray, how: str = "tsne", seed: int = 0, iterations: int = TSNE_ITERATIONS) -> np.ndarray:
    """2-D coordinates of ``x`` (standardized first) by t-SNE (``iterations`` gradient steps, at least 250: up to
    :data:`mmib.eval.tsne.EXACT_MAX_POINTS` rows the exact t-SNE of :mod:`mmib.eval.tsne`, about a third of
    scikit-learn's Barnes–Hut time there; above, scikit-learn's) or UMAP (umap-learn)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2 or len(x) < 5:
        raise MMIBError(f"2-D map: need an (N, d) array with N >= 5, got shape {x.shape}")
    std = x.std(0)
    std[std < 1e-8] = 1
    x = (x - x.mean(0)) / std
    if how == "tsne":
        from sklearn.manifold import TSNE

        from mmib.eval.tsne import EXACT_MAX_POINTS, tsne_exact

        if int(iterations) < 250:
            raise MMIBError(f"t-SNE: iterations must be >= 250 (the early-exaggeration phase), got {iterations}")
        perplexity = min(30.0, (len(x) - 1) / 3)
        if len(x) <= EXACT_MAX_POINTS:
            return tsne_exact(x, perplexity, int(iterations), seed)
        return TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed,
                    max_iter=int(iterations)).fit_transform(x)
    if how == "umap":
        from mmib.utils.deps import require

        umap = require("umap", "viz", "UMAP plots")
        return umap.UMAP(n_components=2, random_state=seed).fit_transform(x)
    raise MMIBError(f"2-D map: unknown method '{how}'; valid: tsne, umap")


#: the layout of a stored map (:func:`cached_embed_2d`); bump it when that layout changes
MAPS_FORMAT = 1


def cached_embed_2d(x: np.ndarray, how: str = "tsne", seed: int = 0, iterations: int = TSNE_ITERATIONS,
                    folder: str | os.PathLike | None = None) -> np.ndarray:
    """:func:`embed_2d`, kept on disk (``$MMIB_CACHE_DIR/maps``, or ``folder``) as a ``.npy`` file read without
    pickle. For inputs that do not depend on the trained method (the raw features of a split): every run on the same
    data split draws the same map. The key is the SHA-256 of the array's dtype, shape and bytes, ``how``, ``seed``,
    ``iterations``, the source of this module and of :mod:`mmib.eval.tsne` and the numpy / scikit-learn (umap-learn)
    versions; an unreadable entry is computed again, a folder that cannot be written is skipped."""
    import hashlib
    import importlib.metadata
    import json

    if folder is None:
        from mmib.utils.cache import cache_dir

        folder = cache_dir("maps")
    lib = "sklearn" if how == "tsne" else "umap"
    try:
        version = importlib.metadata.version("scikit-learn" if how == "tsne" else "umap-learn")
    except importlib.metadata.PackageNotFoundError:
        version = None
    a = np.ascontiguousarray(x, dtype=np.float32)
    digest = hashlib.sha256(f"{a.dtype.str} {a.shape}".encode() + memoryview(a).cast("B").tobytes()).hexdigest()
    code = Path(__file__).read_bytes() + Path(__file__).with_name("tsne.py").read_bytes()
    text = json.dumps({"format": MAPS_FORMAT, "x": digest, "how": how,
                       "seed": int(seed), "iterations": int(iterations), "numpy": np.__version__, lib: version,
                       "code": hashlib.sha256(code).hexdigest()}, sort_keys=True)
    key = hashlib.sha256(text.encode()).hexdigest()
    path = Path(folder) / key[:2] / f"{key}.npy"
    if path.is_file():
        try:
            xy = np.load(path, allow_pickle=False)
            if xy.shape == (len(x), 2) and np.isfinite(xy).all():
                return xy
        except (OSError, ValueError):
            pass
    xy = embed_2d(x, how, seed, iterations)
    try:
        from mmib.utils.io import atomic_path

        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.asarray(xy), allow_pickle=False)
    except OSError:
        pass
    return xy


def plot_embedding_2d(panels: Mapping[str, np.ndarray], colour: np.ndarray | None, path: str | os.PathLike,
                      how: str = "tsne", colour_name: str = "label", discrete: bool = True, seed: int = 0,
                      iterations: int = TSNE_ITERATIONS, coords: Mapping[str, np.ndarray] | None = None) -> Path:
    """One t-SNE/UMAP panel per representation, points coloured by ``colour`` (labels or a latent). ``coords``: the
    2-D coordinates of some panels (by title), already computed by :func:`embed_2d`; the others are computed here."""
    right = 0.9 if colour is not None else 0.1  # the legend or colour bar, once, right of the last panel
    fig = _figure(4.0 * len(panels) + right, 4.0, margins=(0.1, right, 0.1, 0.35), wspace=0.05)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    sc = None
    for ax, (title, x) in zip(axes, panels.items()):
        xy = coords[title] if coords and title in coords else embed_2d(x, how, seed, iterations)
        if colour is None:
            ax.scatter(xy[:, 0], xy[:, 1], s=5, alpha=0.7)
        elif discrete:
            cmap = "tab10" if len(np.unique(colour)) <= 10 else "tab20"
            sc = ax.scatter(xy[:, 0], xy[:, 1], c=colour, cmap=cmap, s=5, alpha=0.8)
        else:
            sc = ax.scatter(xy[:, 0], xy[:, 1], c=colour, cmap="viridis", s=5, alpha=0.8)
        ax.set_title(f"{title} — {how.upper() if how == 'umap' else 't-SNE'}", fontsize=9, y=1.0, pad=4)
        ax.set_xticks([])
        ax.set_yticks([])
    if sc is not None and discrete and len(np.unique(colour)) <= 20:
        ax = axes[-1]
        ax.legend(*sc.legend_elements(num=None), fontsize=6, title=colour_name, title_fontsize=7,
                  loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, markerscale=0.8)
    elif sc is not None and not discrete:
        fig.colorbar(sc, ax=list(axes), label=colour_name, fraction=0.6 / fig.get_size_inches()[0], pad=0.01)
    return _save(fig, path)


# ------------------------------------------------------------------------------------------------ heatmaps
def _annotated(ax, values: np.ndarray, text: Sequence[Sequence[str]], cmap: str, vmin: float, vmax: float):
    im = ax.imshow(values, aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            v = values[i, j]
            if np.isfinite(v):
                rel = (v - vmin) / (vmax - vmin) if vmax > vmin else 0.5
                ax.text(j, i, text[i][j], ha="center", va="center", fontsize=7,
                        color="white" if rel > 0.6 or rel < 0.15 else "black")
    return im


def plot_subset_heatmap(result: Mapping[str, Any], path: str | os.PathLike, metric: str | None = None) -> Path:
    """Rows = modality subsets (by size); left: which modalities each subset holds; right: the metric per source."""
    metric = metric or result.get("primary_metric", "accuracy")
    mods = list(result["modalities"])
    rows = result["rows"]
    subsets: list[str] = []
    for r in rows:
        s = "+".join(r["subset"])
        if s not in subsets:
            subsets.append(s)
    sources = []
    for r in rows:
        src = "own predictions" if r["probe"] == "own" else r["source"]
        if src not in sources:
            sources.append(src)
    vals = np.full((len(subsets), len(sources)), np.nan)
    for r in rows:
        src = "own predictions" if r["probe"] == "own" else r["source"]
        vals[subsets.index("+".join(r["subset"])), sources.index(src)] = r["metrics"].get(metric, np.nan)
    member = np.array([[m in s.split("+") for m in mods] for s in subsets], dtype=float)
    h = max(2.5, 0.22 * len(subsets) + 1.2)
    named = len(mods) <= 4  # subset names beside the rows; with more modalities the membership grid names them
    left = 0.15 + (0.07 * max(len(s) for s in subsets) if named else 0.0)
    w = 0.45 * len(mods) + 1.3 * len(sources) + 2.2 + (left - 0.15)
    fig = _figure(w, h, margins=(left, 0.6, 0.6, 0.7), wspace=0.05)
    a1, a2 = fig.subplots(1, 2, width_ratios=[max(len(mods), 1), 2.2 * len(sources)], sharey=True)
    a1.imshow(member, aspect="auto", cmap="Greys", vmin=0, vmax=1.4)
    a1.set_xticks(range(len(mods)), mods, rotation=60, fontsize=7)
    if named:
        a1.set_yticks(range(len(subsets)), subsets, fontsize=6)
    else:
        a1.set_yticks([])
    a1.set_title("modalities", fontsize=8, y=1.0, pad=4)
    finite = vals[np.isfinite(vals)]
    higher = metric not in ("mse", "mae")
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if vmin == vmax:
        vmin, vmax = vmin - 0.5, vmax + 0.5
    im = _annotated(a2, vals, [[f"{v:.3f}" for v in row] for row in vals], "viridis" if higher else "viridis_r",
                    vmin, vmax)
    a2.set_xticks(range(len(sources)), sources, fontsize=7)
    a2.set_title(metric, fontsize=8, y=1.0, pad=4)
    fig.colorbar(im, ax=a2, shrink=0.6, pad=0.04)
    fig.suptitle(f"modality subsets — {result.get('probe_description', '')}", fontsize=9)
    return _save(fig, path)


def plot_probe_matrix(matrix: Mapping[str, Any], path: str | os.PathLike, title: str = "information probes") -> Path:
    """Representation × latent matrix; colour = gain over chance, (score − chance) / (1 − chance) for accuracy and
    R² itself for continuous latents; the cell text is the score, the column header its chance level."""
    reps, lats = list(matrix["representations"]), list(matrix["latents"])
    vals = np.asarray(matrix["values"], dtype=float)
    chance = matrix["chance"]
    gain = np.full_like(vals, np.nan)
    for j, lat in enumerate(lats):
        c = float(chance.get(lat, 0.0))
        if matrix.get("kinds", {}).get(lat) == "classification" and c < 1:
            gain[:, j] = (vals[:, j] - c) / (1 - c)
        else:
            gain[:, j] = vals[:, j]
    fig = _figure(1.1 * len(lats) + 3.0, 0.32 * len(reps) + 1.6)
    ax = fig.subplots()
    im = _annotated(ax, np.clip(gain, -0.2, 1.0), [[f"{v:.2f}" for v in row] for row in vals], "magma", -0.2, 1.0)
    ax.set_xticks(range(len(lats)), [f"{lat}\n(chance {float(chance.get(lat, 0)):.2f})" for lat in lats], fontsize=7)
    ax.set_yticks(range(len(reps)), reps, fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.7, label="gain over chance")
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def plot_retrieval(result: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Grouped bars of R@k and mAP per (source, direction), with the chance level as a dashed tick."""
    rows = result["rows"]
    metrics = [k for k in rows[0]["metrics"] if k.startswith("R@")] + ["mAP"]
    names = [f"{r['source']}\n{r['direction']}" for r in rows]
    longest = max(len(line) for n in names for line in n.split("\n"))
    bottom = 0.45 + 0.5 * 0.05 * longest  # the labels at 30 degrees: half their length (about 0.05 in a character)
    w = max(4.0, 0.9 * len(rows) * len(metrics) / 2 + 2)
    fig = _figure(w, 2.6 + bottom, margins=(0.5, 0.15, bottom, 0.35))
    ax = fig.subplots()
    width = 0.8 / len(metrics)
    x = np.arange(len(rows))
    for i, m in enumerate(metrics):
        ax.bar(x + i * width, [r["metrics"][m] for r in rows], width, label=m)
        ax.hlines([r["chance"][m] for r in rows], x + i * width - width / 2, x + i * width + width / 2, colors="k",
                  linestyles="dashed", linewidth=0.8)
    ax.set_xticks(x + 0.4 - width / 2, names, fontsize=6, rotation=30, ha="right", rotation_mode="anchor")
    ax.set_ylim(0, 1)
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=7, ncol=len(metrics), loc="upper right")
    ax.set_title("cross-modal retrieval (dashed: chance)", fontsize=9, y=1.0, pad=4)
    return _save(fig, path)


def plot_leaderboard(labels: Sequence[str], means: Sequence[float], stds: Sequence[float], path: str | os.PathLike,
                     metric: str, title: str) -> Path:
    """Horizontal bars: mean ± std over seeds per (variant, data set)."""
    fig = _figure(6.0, 0.35 * len(labels) + 1.2)
    ax = fig.subplots()
    y = np.arange(len(labels))
    ax.barh(y, means, xerr=[0 if not np.isfinite(s) else s for s in stds], color="tab:blue", alpha=0.8, capsize=3)
    ax.set_yticks(y, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(metric, fontsize=8)
    ax.set_title(title, fontsize=9)
    return _save(fig, path)
