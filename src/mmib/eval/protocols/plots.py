"""``plots``: training curves (the run's CSV logs), t-SNE (and UMAP with the ``viz`` extra) of a representation and of
the raw features, coloured by label or latent. It has no table and is not compared."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Executor
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

    opt = _check_iterations(parse_options(PlotOptions, options, "plots"))
    res = new_result("plots", opt)
    if ctx.out_dir is None:
        res["notes"].append("skipped: no output folder for plots")
        return res
    if opt.curves:
        pp = ctx.plot_path("training_curves")
        started = ctx.background.pop(("curves", ctx.run_dir), None)  # drawn ahead by start_maps
        if ctx.run_dir is None or not plots.find_metrics_csv(ctx.run_dir):
            res["notes"].append("training curves skipped: the run has no logs/version_*/metrics.csv")
        elif started.result() if started else plots.plot_training_curves(ctx.run_dir, pp[0]):
            res["plots"]["training_curves"] = pp[1]
        else:
            res["notes"].append("training curves skipped: no epoch-level metrics logged")
    methods = _methods(opt)
    if opt.umap == "auto" and "umap" not in methods:
        res["notes"].append("UMAP skipped: install the 'viz' extra (pip install 'mmib[viz]')")
    if methods:
        try:
            check_representation(ctx.method, opt.representation, ctx.modalities)
        except MissingCapabilityError as e:
            res["notes"].append(f"maps skipped: {e}")
            return res
        started = ctx.background.pop(_maps_key(ctx, opt), None)
        job = None if started else _map_job(ctx, opt)
        for how in methods:
            pp = ctx.plot_path(how)
            with ctx.reporter.task(how, total=None):
                if started:
                    started[how].result()
                else:
                    _draw_map(job, how, pp[0])
            res["plots"][how] = pp[1]
    return res


def _maps_key(ctx: EvalContext, opt: PlotOptions) -> tuple:
    return ("maps", opt.representation, opt.split, opt.max_points, opt.color_by, opt.tsne_iterations, ctx.seed)


def _check_iterations(opt: PlotOptions) -> PlotOptions:
    """``opt``, or an :class:`MMIBError` when t-SNE is on and ``tsne_iterations`` is not an integer >= 250."""
    if opt.tsne and (isinstance(opt.tsne_iterations, bool) or not isinstance(opt.tsne_iterations, int)
                     or opt.tsne_iterations < 250):
        raise MMIBError(f"plots: option tsne_iterations must be an integer >= 250, got {opt.tsne_iterations!r}")
    return opt


def _methods(opt: PlotOptions) -> list[str]:
    from mmib.eval import plots

    umap = opt.umap is True or (opt.umap == "auto" and plots.umap_available())
    return (["tsne"] if opt.tsne else []) + (["umap"] if umap else [])


def _map_job(ctx: EvalContext, opt: PlotOptions) -> dict[str, Any]:
    """What the maps need: the panels (representation, raw features; at most ``max_points`` rows) and colours."""
    sf = ctx.features(opt.split, ctx.modalities, [opt.representation, "raw"])
    colour, colour_name, discrete = _colours(ctx, sf, opt.color_by)
    take = np.arange(len(sf.index))
    if len(take) > opt.max_points:
        take = np.sort(np.random.default_rng(ctx.seed).choice(len(take), opt.max_points, replace=False))
    panels = {f"{ctx.method.name} ({opt.representation})": sf.features[opt.representation][take],
              "raw features": sf.features["raw"][take]}
    return {"panels": panels, "colour": None if colour is None else colour[take], "colour_name": colour_name,
            "discrete": discrete, "seed": ctx.seed, "iterations": opt.tsne_iterations,
            "cache": ctx.probe_cache is not None}


def _draw_map(job: dict[str, Any], how: str, path) -> None:
    """One map figure: the panels' 2-D coordinates, then the drawing. The raw-features panel does not depend on the
    method: with the cache on (``job["cache"]``), its coordinates are read from / kept in the disk cache of maps."""
    from mmib.eval import plots

    coords = ({"raw features": plots.cached_embed_2d(job["panels"]["raw features"], how, job["seed"],
                                                     job["iterations"])} if job["cache"] else None)
    plots.plot_embedding_2d(job["panels"], job["colour"], path, how=how, colour_name=job["colour_name"],
                            discrete=job["discrete"], seed=job["seed"], iterations=job["iterations"], coords=coords)


def start_maps(ctx: EvalContext, options: Mapping[str, Any] | None, pool: Executor) -> None:
    """Start the training curves and the maps of a ``plots`` protocol in ``pool`` (a thread: scikit-learn's t-SNE runs without the GIL, and
    matplotlib keeps its fonts per thread), so that they are computed and drawn while the probes train;
    :func:`run_plots` then waits for them. Nothing is started when the protocol would draw no map (or its options are
    wrong: :func:`run_plots` then reports that)."""
    from mmib.eval import plots
    from mmib.eval.representations import check_representation

    try:
        opt = _check_iterations(parse_options(PlotOptions, options, "plots"))
        if opt.curves and ctx.out_dir is not None and ctx.run_dir is not None and plots.find_metrics_csv(ctx.run_dir):
            ctx.background[("curves", ctx.run_dir)] = pool.submit(plots.plot_training_curves, ctx.run_dir,
                                                                  ctx.plot_path("training_curves")[0])
        check_representation(ctx.method, opt.representation, ctx.modalities)
        methods = _methods(opt)
        if ctx.out_dir is None or not methods:
            return
        job = _map_job(ctx, opt)
    except Exception:  # noqa: BLE001 - a head start only: run_plots does the work again and reports its error
        return
    ctx.background[_maps_key(ctx, opt)] = {how: pool.submit(_draw_map, job, how, ctx.plot_path(how)[0])
                                           for how in methods}


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


PLOTS = Protocol("plots", run_plots, PlotOptions, plots_tables, plots=("training_curves", "tsne", "umap"),
                 concurrent=True)
