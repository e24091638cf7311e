"""Run evaluation protocols on a trained method and write ``results.json`` + ``report.md`` + ``plots/*.png``.

>>> from mmib.eval import evaluate_run
>>> results = evaluate_run("runs/clip-mfeat-s0", protocols=["probe", "subsets", "retrieval", "plots"])  # doctest: +SKIP

``results.json`` holds the run's config, the seed, package versions, the git commit, timings (wall seconds), CPU
seconds by part (``cpu_seconds``: the whole evaluation, each protocol's thread, the figure thread, the process so
far and, from :func:`evaluate_run`, ``load_run``) and every metric of every protocol (see :mod:`mmib.eval.protocols`
for the shape of a protocol's result); it is written atomically and carries ``"complete": true`` only when every
protocol finished.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from mmib.data.datamodule import MultimodalDataModule
from mmib.eval.paper import check_paper_block, paper_comparison
from mmib.eval.protocols import EvalContext, ProtocolSpec, parse_protocols
from mmib.eval.protocols.concurrent import check_jobs, run_protocols
from mmib.eval.protocols.plots import start_maps
from mmib.eval.report import RESULTS_KIND, render_markdown, temperature_summary
from mmib.methods.base import Method
from mmib.utils.io import atomic_write_json, atomic_write_text
from mmib.utils.progress import ProgressReporter

SCHEMA_VERSION = 1


def evaluate(
    method: Method,
    dm: MultimodalDataModule,
    protocols: Any = None,
    out_dir: str | os.PathLike | None = None,
    run_dir: str | os.PathLike | None = None,
    config: dict[str, Any] | None = None,
    seed: int = 0,
    progress: bool = True,
    checkpoint: str | None = None,
    extra: dict[str, Any] | None = None,
    cache_dir: str | os.PathLike | None = None,
    cache_key: str | None = None,
    probe_cache: bool = True,
    jobs: int | None = None,
) -> dict[str, Any]:
    """Run ``protocols`` (see :func:`~mmib.eval.protocols.parse_protocols`; default: all) on ``method`` with the
    splits of ``dm``. With ``out_dir``, writes ``results.json``, ``report.md`` and the plots there.

    ``probe_cache``: read and keep the probes on raw features (the ``raw`` baselines, which do not depend on the
    method) in the disk cache ``$MMIB_CACHE_DIR/probes`` (:mod:`mmib.eval.probe.cache`), so that the runs of a suite
    on the same data split fit them once; False fits every probe.

    ``jobs``: how many protocols run at once, each in a thread of its own at one torch thread (None:
    :func:`~mmib.eval.protocols.concurrent.default_jobs`; 1: one after the other, in the given order). The protocols are independent computations on
    the same extracted representations and give the same results either way (their probes draw from generators of
    their own); side by side they take about the time of the longest instead of the sum, when a core is free.
    Protocols not marked :attr:`~mmib.eval.protocols.base.Protocol.concurrent` run alone after the others.

    Under several processes (e.g. after a DDP fit, where Lightning re-ran the command on every rank) rank 0 alone
    evaluates and writes; the other ranks wait for it (a barrier when a process group exists) and get a result with
    ``"skipped_on_rank"`` set and ``"complete": false``."""
    from mmib.engine import barrier
    from mmib.utils.dist import launch_rank

    rank = launch_rank()
    if rank != 0:
        barrier()  # matches rank 0's, after its files are written
        return {"kind": RESULTS_KIND, "schema_version": SCHEMA_VERSION, "complete": False, "skipped_on_rank": rank,
                "protocols": {}, "out_dir": str(out_dir) if out_dir is not None else None}
    try:
        return _evaluate_rank_zero(method, dm, protocols, out_dir, run_dir, config, seed, progress, checkpoint, extra,
                                   cache_dir, cache_key, probe_cache, jobs)
    finally:
        barrier()


def _evaluate_rank_zero(method, dm, protocols, out_dir, run_dir, config, seed, progress, checkpoint, extra,
                        cache_dir=None, cache_key=None, probe_cache=True, jobs=None):
    from mmib.eval.probe.cache import ProbeCache
    from mmib.runs import git_commit, package_versions

    specs: list[ProtocolSpec] = parse_protocols(protocols)
    jobs = check_jobs(jobs)
    if config and config.get("paper"):  # a recipe's paper block: checked before the protocols run
        check_paper_block(config["paper"])
    out = Path(out_dir) if out_dir is not None else None
    t0, c0 = time.time(), time.process_time()
    results: dict[str, Any] = {
        "kind": RESULTS_KIND, "schema_version": SCHEMA_VERSION, "complete": False,
        "method": {"name": method.name, "capabilities": type(method).capabilities(),
                   "supervised": bool(getattr(method, "supervised", False))},
        "data": dm.spec.to_dict(), "splits": dm.summary(), "seed": int(seed),
        "run_dir": str(run_dir) if run_dir is not None else None, "checkpoint": checkpoint,
        "out_dir": str(out) if out is not None else None, "config": config,
        "versions": package_versions(), "git_commit": git_commit(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "jobs": jobs, "timings": {}, "protocols": {},
        **(extra or {}),
    }
    train_seconds = _train_seconds(run_dir)
    if train_seconds is not None:
        results["timings"]["train"] = train_seconds
    temperature = temperature_summary(_run_json(run_dir).get("final_metrics"))
    if temperature is not None:  # a learned temperature: its start and end values, flagged if it barely moved
        results["learned_temperature"] = temperature
    method.eval()
    pcache = ProbeCache() if probe_cache else None
    with ProgressReporter(enabled=progress) as reporter:
        # the figures are drawn in a thread beside the protocols: the plots' training curves and 2-D maps (started
        # first; scikit-learn's t-SNE runs without the GIL) and those a protocol hands to ctx.draw
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmib-figures") as pool:
            ctx = EvalContext(method, dm, seed=int(seed), out_dir=out, run_dir=Path(run_dir) if run_dir else None,
                              reporter=reporter, cache_dir=Path(cache_dir) if cache_dir is not None else None,
                              cache_key=cache_key, probe_cache=pcache, pool=pool)
            try:
                for spec in specs:
                    if spec.kind == "plots":
                        start_maps(ctx, spec.options, pool)
                for spec, res in zip(specs, run_protocols(ctx, specs, jobs)):
                    results["protocols"][spec.name] = res
                    results["timings"][spec.name] = res["seconds"]
                ctx.finish_drawing()  # the other figures (heatmap, retrieval) drawn beside the protocols
                figures_cpu = pool.submit(time.thread_time).result()  # after every figure: the pool's one thread
            finally:
                for job in ctx.background.values():  # e.g. after an error: nothing left to start
                    for future in job.values() if isinstance(job, dict) else [job]:
                        future.cancel()
                ctx.background.clear()
                for future in ctx._drawing:
                    future.cancel()
    if pcache is not None:  # how many raw-feature probe results were read back (hits) or fitted and stored (misses)
        results["probe_cache"] = {"folder": str(pcache.folder), "hits": pcache.hits, "misses": pcache.misses}
    results["timings"]["eval_total"] = round(time.time() - t0, 3)
    # CPU seconds: "evaluate" every thread of this process from here, "protocols" each protocol's own thread,
    # "figures" the figure thread; "process" this process so far (its imports and, from evaluate_run, "load_run")
    results["cpu_seconds"] = {**results.get("cpu_seconds", {}), "evaluate": round(time.process_time() - c0, 3),
                              "protocols": dict(ctx.cpu), "figures": round(figures_cpu, 3),
                              "process": round(time.process_time(), 3)}
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    results["paper_vs_ours"] = paper_comparison(results)  # None unless the run's config has a `paper` block
    results["complete"] = True
    if out is not None:
        write_results(results, out)
    return results


def write_results(results: dict[str, Any], out_dir: str | os.PathLike) -> None:
    """``results.json`` (atomically) and ``report.md`` into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "report.md", render_markdown(results))
    atomic_write_json(out / "results.json", results)  # last: its presence marks a complete evaluation


def _run_json(run_dir: str | os.PathLike | None) -> dict[str, Any]:
    try:
        return json.loads((Path(run_dir) / "run.json").read_text()) if run_dir is not None else {}
    except (OSError, ValueError):
        return {}


def _train_seconds(run_dir: str | os.PathLike | None) -> float | None:
    if run_dir is None:
        return None
    p = Path(run_dir) / "run.json"
    try:
        v = json.loads(p.read_text()).get("train_seconds")
        return round(float(v), 3) if v is not None else None
    except (OSError, ValueError):
        return None


def evaluate_run(
    run_dir: str | os.PathLike,
    protocols: Any = None,
    out_dir: str | os.PathLike | None = None,
    checkpoint: str | None = None,
    progress: bool = True,
    seed: int | None = None,
    trust_pickle: bool = False,
    cache: bool = True,
    jobs: int | None = None,
) -> dict[str, Any]:
    """Evaluate a finished run folder (``mmib train`` / bench) with its own config and splits; the results go to
    ``out_dir`` (default: the run folder). ``trust_pickle``: honour the run's ``data.trust_pickle`` (see
    :func:`mmib.runs.load_run`). ``cache``: keep the extracted representations in ``<run>/cache/representations``,
    keyed by the checkpoint's and the run config's SHA-256, so that a later evaluation of the same checkpoint (other
    protocols, other probe options) skips the extraction, and use the disk cache of the raw-feature probes
    (``probe_cache`` of :func:`evaluate`); False: neither. ``jobs``: protocols run at once (:func:`evaluate`)."""
    from mmib.config import to_container
    from mmib.runs import load_run

    run = Path(run_dir)
    if run.suffix == ".ckpt":
        checkpoint, run = str(run), run.parent.parent
    c0 = time.thread_time()
    cfg, method, dm = load_run(run, checkpoint, trust_pickle=trust_pickle)
    load_cpu = round(time.thread_time() - c0, 3)
    c = to_container(cfg)
    ckpt = checkpoint or str(run / "checkpoints" / "last.ckpt")
    key = _file_digest(ckpt, run / "config.yaml") if cache else None
    return evaluate(method, dm, protocols, out_dir=out_dir if out_dir is not None else run, run_dir=run, config=c,
                    seed=int(c.get("seed", 0)) if seed is None else int(seed), progress=progress, checkpoint=ckpt,
                    cache_dir=run / "cache" / "representations" if cache else None, cache_key=key, probe_cache=cache,
                    jobs=jobs, extra={"cpu_seconds": {"load_run": load_cpu}})


def _file_digest(*paths: str | os.PathLike) -> str:
    """SHA-256 over the bytes of the given files (the checkpoint and the run's config)."""
    import hashlib

    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def is_complete(path: str | os.PathLike) -> bool:
    """True when ``path`` (a folder or a results.json) holds a complete evaluation."""
    p = Path(path)
    if p.is_dir():
        p = p / "results.json"
    try:
        return bool(json.loads(p.read_text()).get("complete"))
    except (OSError, ValueError):
        return False

