"""``plots``: training curves (the run's CSV logs), t-SNE (and UMAP with the ``viz`` extra) of a representation and of
the raw features, coloured by label or latent. It has no table and is not compared."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mmib.errors import MMIBError, UnknownNameError
from mmib.eval.plots import TSNE_ITERATIONS  # light: matplotlib is imported when a figure is drawn
from mmib.eval.protocols.base import Protocol, new_result, parse_options

if TYPE_CHECKING:
    from mmib.eval.protocols.context import EvalContext
    from mmib.eval.representations import SplitFeatures


@dataclass
class PlotOptions:
    """``plots``: training curves (from the run's CSV logs), t-SNE (and UMAP) of a representation (at most
    ``max_points`` test rows; ``tsne_iterations`` t-SNE steps, default 350, scikit-learn's default 1000)."""

    curves: bool = True
    tsne: bool = True
    tsne_iterations: int = TSNE_ITERATIONS
    umap: bool | str = "auto"
    color_by: str = "label"
    representation: str = "concat"
    split: str = "test"
    max_points: int = 1000


def run_plots(ctx: EvalContext, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Training curves and 2-D maps (t-SNE; UMAP when installed) of a representation and of the raw features."""
    from mmib.eval import plots
    from mmib.eval.representations import MissingCapabilityError, check_representation

    opt = parse_options(PlotOptions, options, "plots")
    if opt.tsne and (isinstance(opt.tsne_iterations, bool) or not isinstance(opt.tsne_iterations, int)
                     or opt.tsne_iterations < 250):
        raise MMIBError(f"plots: option tsne_iterations must be an integer >= 250, got {opt.tsne_iterations!r}")
    res = new_result("plots", opt)
    if ctx.out_dir is None:
        res["notes"].append("skipped: no output folder for plots")
        return res
    if opt.curves:
        pp = ctx.plot_path("training_curves")
        if ctx.run_dir is None or not plots.find_metrics_csv(ctx.run_dir):
            res["notes"].append("training curves skipped: the run has no logs/version_*/metrics.csv")
        elif plots.plot_training_curves(ctx.run_dir, pp[0]):
            res["plots"]["training_curves"] = pp[1]
        else:
            res["notes"].append("training curves skipped: no epoch-level metrics logged")
    methods = []
    if opt.tsne:
        methods.append("tsne")
    if opt.umap is True or (opt.umap == "auto" and plots.umap_available()):
        methods.append("umap")
    elif opt.umap == "auto":
        res["notes"].append("UMAP skipped: install the 'viz' extra (pip install 'mmib[viz]')")
    if methods:
        try:
            check_representation(ctx.method, opt.representation, ctx.modalities)
        except MissingCapabilityError as e:
            res["notes"].append(f"maps skipped: {e}")
            return res
        sf = ctx.features(opt.split, ctx.modalities, [opt.representation, "raw"])
        colour, colour_name, discrete = _colours(ctx, sf, opt.color_by)
        take = np.arange(len(sf.index))
        if len(take) > opt.max_points:
            take = np.sort(np.random.default_rng(ctx.seed).choice(len(take), opt.max_points, replace=False))
        panels = {f"{ctx.method.name} ({opt.representation})": sf.features[opt.representation][take],
                  "raw features": sf.features["raw"][take]}
        for how in methods:
            pp = ctx.plot_path(how)
            with ctx.reporter.task(how, total=None):
                plots.plot_embedding_2d(panels, None if colour is None else colour[take], pp[0], how=how,
                                        colour_name=colour_name, discrete=discrete, seed=ctx.seed,
                                        iterations=opt.tsne_iterations)
            res["plots"][how] = pp[1]
    return res


def _colours(ctx: EvalContext, sf: SplitFeatures, color_by: str) -> tuple[np.ndarray | None, str, bool]:
    if color_by == "label":
        if sf.y is None:
            return None, "", False
        return sf.y.reshape(len(sf.y), -1)[:, 0], "label", ctx.spec.task == "classification"
    if color_by.startswith("latent:"):
        name = color_by.split(":", 1)[1]
        if name not in ctx.spec.latents:
            raise UnknownNameError(f"latent of data set '{ctx.spec.name}'", name, list(ctx.spec.latents))
        v = np.asarray(sf.latents[name])
        return v.reshape(len(v), -1)[:, 0], name, bool(ctx.spec.latents[name])
    raise MMIBError(f"plots: color_by must be 'label' or 'latent:<name>', got {color_by!r}")


def plots_tables(res: Mapping[str, Any]) -> list:
    """No table: the plots protocol's figures are linked below its notes."""
    return []


PLOTS = Protocol("plots", run_plots, PlotOptions, plots_tables, plots=("training_curves", "tsne", "umap"))
