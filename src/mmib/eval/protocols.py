"""Evaluation protocols. Each one talks to the method through the Method interface only (``embed``, and where
``Method.capabilities()`` says so ``fuse``, ``components``, ``predict``; ``score`` for retrieval), so every protocol
works for every method; a representation a method does not have is skipped with a note.

========================= ==============================================================================================
``probe``                 CE-trained linear probe and/or the papers' 4-layer MLP on frozen representations
                          (``concat`` | ``fused`` | ``component:<name>`` | ``components``), raw-feature baseline,
                          the method's own predictions when it has ``predict``
``pair_probe``            same-group pair classification (OVA-IB's trajectory-pair task on Vision & Touch): seeded,
                          balanced pairs of each split (:func:`~mmib.data.loaders.vision_touch.trajectory_pairs` on
                          the data set's ``groups``), features ``[z_a, z_b, |z_a − z_b|, z_a ⊙ z_b]`` of a frozen
                          representation, the 4-layer MLP (or linear) probe early-stopped on val
``subsets``               pretrain once with all modalities, probe every non-empty subset of modalities (2^M − 1;
                          OVA-IB Tables 2 and 5–11): table + heatmap
``retrieval``             queries = a set of modalities, candidates = another (``resp+ecg->bvp``), scored with the
                          method's own ``score``; mAP, R@1/5/10, MRR, median rank, and the Symile paper's
                          ``class_top1`` / ``acc_1_of_10``, chance beside
``info_probe``            representation × ground-truth latent matrix of probe accuracy (R² for continuous latents)
                          with chance levels: which information each representation holds and what leaks where
``plots``                 training curves, t-SNE (and UMAP with the ``viz`` extra) coloured by label or latent
========================= ==============================================================================================

``representations`` (a list) also accepts its singular ``representation`` (one name or a list) in the ``probe`` and
``pair_probe`` protocols, as the ``--representation`` flag and the ``subsets`` option are spelt; when both are given
(``--representation`` always sets the plural) the singular wins: ``--option probe.representation=fused``.

A protocol returns a JSON-able dict ``{"protocol", "name", "options", "rows": [...], "notes": [...], "plots": {...}}``;
every row has an ``id`` (stable across runs, used by the bench aggregation), a ``source`` (``method`` or ``raw``) and
its ``metrics``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from mmib.data.datamodule import MultimodalDataModule
from mmib.data.dataset import batch_to_device
from mmib.errors import MMIBError, UnknownNameError
from mmib.eval.metrics import (
    RETRIEVAL_KS,
    class_top1,
    class_top1_chance,
    finite_or_raise,
    one_of_k_accuracy,
    retrieval_chance,
    retrieval_metrics,
)
from mmib.eval.probe import PROBE_DESCRIPTIONS, PROBES, ProbeConfig, ProbeResult, fit_linear_probes, fit_probe
from mmib.eval.representations import (
    MissingCapabilityError,
    SplitFeatures,
    check_representation,
    extract_split,
    needs_capability,
)
from mmib.methods.base import Method
from mmib.utils.progress import ProgressReporter

#: protocols ``mmib eval`` runs when none are named
DEFAULT_PROTOCOLS = ("probe", "subsets", "retrieval", "info_probe", "plots")


# ====================================================================================================== context
@dataclass
class EvalContext:
    """What a protocol gets: the method, the data module (its splits), a seed, where plots go, and a cache of
    extracted features shared by the protocols of one evaluation."""

    method: Method
    dm: MultimodalDataModule
    seed: int = 0
    out_dir: Path | None = None
    run_dir: Path | None = None
    reporter: ProgressReporter = field(default_factory=lambda: ProgressReporter(enabled=False))
    #: a folder for representations extracted by an earlier evaluation of the same checkpoint (``cache_key``: the
    #: checkpoint's and the run config's hash); None: extract in memory only
    cache_dir: Path | None = None
    cache_key: str | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def spec(self):
        return self.dm.spec

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.dm.spec.modality_names

    def capable(self, capability: str) -> bool:
        return bool(type(self.method).capabilities().get(capability, False))

    def features(self, split: str, modalities: Sequence[str], representations: Sequence[str]) -> SplitFeatures:
        """Representations of a split for these modalities, extracted once per (split, modalities, name)."""
        mods = self.spec.check_modalities(modalities)
        key = (split, mods)
        have = self._cache.get(key)
        missing = [r for r in representations if have is None or r not in have.features]
        for r in list(missing):
            got = self._load_cached(split, mods, r)
            if got is not None:
                missing.remove(r)
                if have is None:
                    have = got
                else:
                    have.features.update(got.features)
        self._cache[key] = have
        if missing:
            new = extract_split(self.method, self.dm, split, mods, missing)
            for r in missing:
                self._save_cached(split, mods, r, new)
            if have is None:
                have = new
            else:
                have.features.update(new.features)
            self._cache[key] = have
        return have

    def _cache_file(self, split: str, mods: Sequence[str], rep: str) -> Path | None:
        if self.cache_dir is None or self.cache_key is None or rep.startswith("raw"):
            return None
        h = hashlib.sha256(json.dumps([self.cache_key, split, list(mods), rep]).encode())
        h.update(np.ascontiguousarray(self.dm.indices[split]).tobytes())  # the split's rows
        return Path(self.cache_dir) / f"{split}-{h.hexdigest()[:24]}.npz"

    def _load_cached(self, split: str, mods: Sequence[str], rep: str) -> SplitFeatures | None:
        """A representation an earlier evaluation of the same checkpoint stored (never unpickled); None when there
        is none or it cannot be read (it is then extracted again)."""
        path = self._cache_file(split, mods, rep)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                feats, index = z["features"], z["index"]
                y = z["y"] if "y" in z.files else None
                latents = {k.removeprefix("latent__"): z[k] for k in z.files if k.startswith("latent__")}
                dropped = int(z["n_dropped"])
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            return None
        if feats.ndim != 2 or len(feats) != len(index) or not np.isfinite(feats).all():
            return None
        return SplitFeatures({rep: feats}, y, latents, index, dropped)

    def _save_cached(self, split: str, mods: Sequence[str], rep: str, sf: SplitFeatures) -> None:
        path = self._cache_file(split, mods, rep)
        if path is None:
            return
        from mmib.utils.io import atomic_path

        arrays = {"features": sf.features[rep], "index": sf.index, "n_dropped": np.asarray(sf.n_dropped),
                  **({"y": sf.y} if sf.y is not None else {}),
                  **{f"latent__{k}": v for k, v in sf.latents.items()}}
        try:
            with atomic_path(path) as tmp:
                np.savez(tmp, **arrays)
        except OSError:  # a read-only run folder: evaluation goes on without the cache
            pass

    def plot_path(self, name: str) -> tuple[Path, str] | None:
        """(absolute path, path relative to the report) of a PNG, or None when plots are not written."""
        if self.out_dir is None:
            return None
        p = Path(self.out_dir) / "plots" / f"{name}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        return p, f"plots/{name}.png"

    def component_names(self) -> list[str]:
        idx = self.dm.indices["test"][:4] if len(self.dm.indices["test"]) else self.dm.indices["train"][:4]
        batch = self.dm.dataset.get_batch(idx)
        with torch.no_grad():
            return list(self.method.components(batch, self.modalities))


def primary_metric(task: str) -> str:
    return "accuracy" if task == "classification" else "mse"


# ====================================================================================================== options
@dataclass
class ProbeOptions:
    """``probe``: probes on frozen representations of all (or the given) modalities. ``representation`` (singular)
    is an alias of ``representations``."""

    ALIASES: ClassVar[dict[str, str]] = {"representation": "representations"}

    probes: list[str] = field(default_factory=lambda: ["linear"])
    representations: list[str] = field(default_factory=lambda: ["concat"])
    modalities: list[str] | None = None
    baseline_raw: bool = True
    own_predictions: bool = True
    probe_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class PairProbeOptions:
    """``pair_probe``: do two samples come from the same group (trajectory, episode)? ``probe``: ``mlp`` (the papers'
    4-layer MLP, default) or ``linear``; ``representations`` as in ``probe`` (alias ``representation``);
    ``pairs_per_sample``: pairs drawn per sample of each split (half same-group, half different-group);
    ``baseline_raw``: also the pair probe on the raw inputs (off by default: images make them very wide)."""

    ALIASES: ClassVar[dict[str, str]] = {"representation": "representations"}

    probe: str = "mlp"
    representations: list[str] = field(default_factory=lambda: ["concat"])
    modalities: list[str] | None = None
    pairs_per_sample: float = 1.0
    baseline_raw: bool = False
    probe_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class SubsetOptions:
    """``subsets``: one probe per non-empty subset of modalities (``sizes``: only subsets of these sizes; default
    all 2^M − 1)."""

    probe: str = "linear"
    representation: str = "concat"
    baseline_raw: bool = False
    own_predictions: bool = True
    sizes: list[int] | None = None
    probe_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class RetrievalOptions:
    """``retrieval``: ``directions`` is ``auto`` (every modality as the candidate, all the others as queries),
    ``pairs`` (every ordered pair ``a->b``), ``last`` (all the others → the last modality) or a list like
    ``["resp+ecg->bvp"]``."""

    directions: str | list[str] = "auto"
    split: str = "test"
    ks: list[int] = field(default_factory=lambda: list(RETRIEVAL_KS))
    baseline_raw: bool = True
    max_queries: int | None = None
    chunk_size: int = 1024
    #: candidates of ``acc_1_of_10``-style accuracy (the positive among itself and n_candidates − 1 random others)
    one_of_k: int = 10


def _paper_retrieval_metrics(scores: torch.Tensor, y: np.ndarray | None, classification: bool, k: int,
                             seed: int) -> tuple[dict[str, float], dict[str, float]]:
    """The Symile paper's retrieval metrics beside the instance-level ones, with their chance levels:
    ``class_top1`` (classification data: the best candidate has the query's class) and ``acc_1_of_<k>``."""
    metrics, chance = {}, {}
    if classification and y is not None:
        metrics["class_top1"] = class_top1(scores, y, y)
        chance["class_top1"] = class_top1_chance(y, y)
    if scores.shape[1] >= 2:
        acc, used = one_of_k_accuracy(scores, k, seed)
        metrics[f"acc_1_of_{k}"], chance[f"acc_1_of_{k}"] = acc, 1.0 / used
    return metrics, chance


@dataclass
class InfoProbeOptions:
    """``info_probe``: a probe per (representation, ground-truth latent). ``representations: auto`` = each
    modality's representation, their concatenation, the fused one and every component where the method has them."""

    latents: list[str] | None = None
    representations: str | list[str] = "auto"
    probe: str = "linear"
    include_raw: bool = True
    include_label: bool = True
    probe_options: dict[str, Any] = field(default_factory=dict)
    # probe a latent on the rows where other latents take given values only, e.g. {A: {e: 1}}: a quantity that is
    # expressed on task trials alone (an amplitude, a delay) is probed on the task trials of every split
    where: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class PlotOptions:
    """``plots``: training curves (from the run's CSV logs), t-SNE (and UMAP) of a representation (at most
    ``max_points`` test rows; ``tsne_iterations`` t-SNE steps, default 500, scikit-learn's default 1000)."""

    curves: bool = True
    tsne: bool = True
    tsne_iterations: int = 500
    umap: bool | str = "auto"
    color_by: str = "label"
    representation: str = "concat"
    split: str = "test"
    max_points: int = 1000


@dataclass
class OOMOptions:
    """``oom``: out-of-modal generalization (COX setting): accuracy of ``predict`` from the OOM modality alone,
    instance retrieval OOM ↔ IM on paired rows, and — for methods with optimal IM heads (``components``
    ``hstar:<k>``) — agreement/disagreement accuracies and the IM-mapping MMD (``mmib.eval.oom``)."""

    split: str = "test"
    ks: list[int] = field(default_factory=lambda: [1, 5])


def parse_options(cls: type, options: Mapping[str, Any] | None, protocol: str) -> Any:
    """The options dataclass of a protocol; an unknown key is an error naming the valid ones. A class's ``ALIASES``
    ({alias: option}) are accepted too; an alias given beside its option wins (the CLI always sets the option)."""
    opts = dict(options or {})
    aliases: dict[str, str] = getattr(cls, "ALIASES", {})
    for alias, target in aliases.items():
        if alias in opts:
            value = opts.pop(alias)
            opts[target] = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
    valid = [f.name for f in fields(cls)]
    for k in opts:
        if k not in valid:
            raise UnknownNameError(f"option of protocol '{protocol}'", k, valid + list(aliases))
    return cls(**opts)


def _check_probe_kind(kind: str) -> None:
    if kind not in PROBES:
        raise UnknownNameError("probe", kind, list(PROBES))


def _result(protocol: str, options: Any) -> dict[str, Any]:
    return {"protocol": protocol, "options": asdict(options), "rows": [], "notes": [], "plots": {}}


# ====================================================================================================== probe
def _probe_row(ctx: EvalContext, source: str, rep: str, probe: str, mods: Sequence[str], options: dict,
               label_prefix: str, extra: dict | None = None) -> dict[str, Any]:
    tr = ctx.features("train", mods, [rep])
    va = ctx.features("val", mods, [rep]) if len(ctx.dm.indices["val"]) else None
    te = ctx.features("test", mods, [rep])
    cfg = ProbeConfig.from_options(probe, options, seed=ctx.seed)
    r = fit_probe(tr.features[rep], tr.y, va.features[rep] if va else None, va.y if va else None,
                  te.features[rep], te.y, ctx.spec.task, ctx.spec.n_classes, cfg)
    return _row_of(r, source, rep, probe, label_prefix, extra)


def _row_of(r: ProbeResult, source: str, rep: str, probe: str, label_prefix: str, extra: dict | None = None) -> dict:
    rep_name = "concat" if rep == "raw" else rep
    return {"id": f"{source}/{rep_name}/{probe}", "source": source, "label": f"{label_prefix} {rep_name}",
            "representation": rep_name, "probe": probe, "probe_description": r.description, "dim": r.dim,
            "metrics": finite_or_raise(r.metrics, f"probe on {label_prefix} {rep_name}"), "chance": r.chance,
            "epochs": r.epochs, "n_train": r.n_train, "n_val": r.n_val, "n_test": r.n_test, **(extra or {})}


def _modality_blocks_usable(ctx: EvalContext) -> bool:
    """Whether a subset's ``concat`` representation is the concatenation of the per-modality blocks extracted once
    with every modality: no split drops a row for a missing modality, and on a few train rows each modality's
    representation does not depend on which other modalities were requested."""
    mods = list(ctx.modalities)
    for split in ("train", "val", "test"):
        if len(ctx.dm.indices[split]) and ctx.features(split, mods, [f"rep:{m}" for m in mods]).n_dropped:
            return False
    batch = batch_to_device(ctx.dm.dataset.get_batch(ctx.dm.indices["train"][:64]), ctx.method.device)
    with torch.no_grad():
        together = ctx.method.embed(batch, mods, space="representation")
        for m in mods:
            alone = ctx.method.embed(batch, [m], space="representation")[m]
            if alone.shape != together[m].shape or not torch.allclose(alone, together[m], rtol=1e-5, atol=1e-6):
                return False
    return True


def _batched_subset_rows(ctx: EvalContext, opt: SubsetOptions, subsets: list[tuple[str, ...]],
                         sources: list[str]) -> dict[tuple[tuple[str, ...], str], dict] | None:
    """The linear subset probes of every source trained together (:func:`fit_linear_probes`, one feature block per
    modality), or None when that does not apply (another probe or representation, missing modalities, or
    representations that depend on the requested subset): then each subset is probed on its own."""
    if opt.probe != "linear" or opt.representation != "concat" or not _modality_blocks_usable(ctx):
        return None
    mods = list(ctx.modalities)
    cfg = ProbeConfig.from_options("linear", opt.probe_options, seed=ctx.seed)
    problems = [tuple(mods.index(m) for m in sub) for sub in subsets]
    has_val = len(ctx.dm.indices["val"]) > 0
    out: dict[tuple[tuple[str, ...], str], dict] = {}
    for source in sources:
        kind = "rep" if source == "method" else "raw"
        names = [f"{kind}:{m}" for m in mods]
        tr = ctx.features("train", mods, names)
        va = ctx.features("val", mods, names) if has_val else None
        te = ctx.features("test", mods, names)
        results = fit_linear_probes([tr.features[k] for k in names], tr.y,
                                    [va.features[k] for k in names] if va else None, va.y if va else None,
                                    [te.features[k] for k in names], te.y, problems, ctx.spec.task,
                                    ctx.spec.n_classes, cfg)
        rep = opt.representation if source == "method" else "raw"
        prefix = ctx.method.name if source == "method" else "raw features"
        for sub, r in zip(subsets, results):
            out[(sub, source)] = _row_of(r, source, rep, "linear", prefix, {"subset": list(sub), "size": len(sub)})
    return out


def _own_prediction_row(ctx: EvalContext, mods: Sequence[str], row_id: str, extra: dict | None = None) -> dict:
    from mmib.eval.metrics import (
        classification_chance,
        classification_metrics,
        regression_chance,
        regression_metrics,
    )

    te = ctx.features("test", mods, ["predict"])
    tr = ctx.features("train", mods, ["predict"])
    out = te.features["predict"]
    if ctx.spec.task == "classification":
        pred = out.argmax(1) if out.ndim == 2 and out.shape[1] > 1 else out.reshape(-1).astype(np.int64)
        metrics, chance = classification_metrics(te.y, pred), classification_chance(tr.y, te.y)
    else:
        metrics, chance = regression_metrics(te.y, out), regression_chance(tr.y, te.y)
    return {"id": row_id, "source": "method", "label": f"{ctx.method.name} own predictions",
            "representation": "predict", "probe": "own", "probe_description": "the method's own predictions (predict)",
            "metrics": finite_or_raise(metrics, "own predictions"), "chance": chance, "n_test": len(te.y),
            **(extra or {})}


def _expand_representations(ctx: EvalContext, reps: Sequence[str], notes: list[str]) -> list[str]:
    out: list[str] = []
    for rep in reps:
        if rep == "components":
            if not ctx.capable("components"):
                notes.append(f"components skipped: method '{ctx.method.name}' has no named components")
                continue
            out += [f"component:{c}" for c in ctx.component_names()]
            continue
        try:
            check_representation(ctx.method, rep, ctx.modalities)
        except MissingCapabilityError as e:
            notes.append(f"{rep} skipped: {e}")
            continue
        out.append(rep)
    return out


def run_probe(ctx: EvalContext, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Probe protocol: every (representation, probe) on the test split, plus raw features and own predictions."""
    opt = parse_options(ProbeOptions, options, "probe")
    for p in opt.probes:
        _check_probe_kind(p)
    res = _result("probe", opt)
    if ctx.spec.task == "none":
        res["notes"].append(f"skipped: data set '{ctx.spec.name}' has no labels (task none)")
        return res
    mods = ctx.spec.check_modalities(opt.modalities)
    reps = _expand_representations(ctx, opt.representations, res["notes"])
    jobs = [("method", r, p) for r in reps for p in opt.probes]
    if opt.baseline_raw:
        jobs += [("raw", "raw", p) for p in opt.probes]
    with ctx.reporter.task("probes", total=len(jobs)) as advance:
        for source, rep, p in jobs:
            prefix = ctx.method.name if source == "method" else "raw features"
            res["rows"].append(_probe_row(ctx, source, rep, p, mods, opt.probe_options, prefix))
            advance()
    if opt.own_predictions and ctx.capable("predict"):
        res["rows"].append(_own_prediction_row(ctx, mods, "method/predict/own"))
    res["modalities"] = list(mods)
    res["primary_metric"] = primary_metric(ctx.spec.task)
    return res


# ====================================================================================================== pair probe
PAIR_FEATURES = "[z_a, z_b, |z_a - z_b|, z_a * z_b]"


def pair_features(z: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Features of the pairs (a[i], b[i]) of rows of ``z``: ``[z_a, z_b, |z_a − z_b|, z_a ⊙ z_b]`` (N, 4d)."""
    za, zb = z[a], z[b]
    return np.concatenate([za, zb, np.abs(za - zb), za * zb], axis=1).astype(np.float32, copy=False)


def _split_pairs(ctx: EvalContext, split: str, sf: SplitFeatures, pairs_per_sample: float, seed: int):
    """Seeded, balanced same/different-group pairs among the rows of one split: positions into ``sf``'s rows."""
    from mmib.data.dataset import DataValidationError
    from mmib.data.loaders.vision_touch import trajectory_pairs

    groups = np.asarray(ctx.dm.dataset.groups)[np.asarray(sf.index, dtype=np.int64)]
    n = max(2, int(round(pairs_per_sample * len(groups))))
    try:
        return trajectory_pairs(groups, None, n_pairs=n, seed=seed)
    except DataValidationError as e:
        raise MMIBError(f"pair_probe: the {split} split of data set '{ctx.spec.name}' cannot give same/different "
                        f"pairs: {e}") from None


def run_pair_probe(ctx: EvalContext, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Pair probe: is a pair of samples from the same group (trajectory)? Pairs never cross splits; the probe is
    trained on train pairs, early-stopped on val pairs and scored on test pairs (chance: 0.5, balanced pairs)."""
    opt = parse_options(PairProbeOptions, options, "pair_probe")
    _check_probe_kind(opt.probe)
    if isinstance(opt.pairs_per_sample, bool) or not isinstance(opt.pairs_per_sample, (int, float)) \
            or not opt.pairs_per_sample > 0:
        raise MMIBError(f"pair_probe: option pairs_per_sample must be a number > 0, got {opt.pairs_per_sample!r}")
    if getattr(ctx.dm.dataset, "groups", None) is None:
        raise MMIBError(f"pair_probe: data set '{ctx.spec.name}' has no groups; the pair probe needs a group id per "
                        "sample (the trajectory / episode, e.g. vision_touch task=trajectory_pair) to tell same-group "
                        "pairs from different-group ones")
    res = _result("pair_probe", opt)
    mods = ctx.spec.check_modalities(opt.modalities)
    reps = _expand_representations(ctx, opt.representations, res["notes"])
    jobs = [("method", r) for r in reps] + ([("raw", "raw")] if opt.baseline_raw else [])
    splits = ["train", "val", "test"] if len(ctx.dm.indices["val"]) else ["train", "test"]
    if "val" not in splits:
        res["notes"].append("no val split: the pair probe trains for max_epochs without early stopping")
    feats = {s: ctx.features(s, mods, [r for _, r in jobs]) for s in splits}
    pairs = {s: _split_pairs(ctx, s, feats[s], opt.pairs_per_sample, ctx.seed + i) for i, s in enumerate(splits)}
    with ctx.reporter.task("pair probes", total=len(jobs)) as advance:
        for source, rep in jobs:
            x = {s: pair_features(feats[s].features[rep], pairs[s][0], pairs[s][1]) for s in splits}
            y = {s: pairs[s][2] for s in splits}
            cfg = ProbeConfig.from_options(opt.probe, opt.probe_options, seed=ctx.seed)
            r = fit_probe(x["train"], y["train"], x.get("val"), y.get("val"), x["test"], y["test"], "classification",
                          2, cfg)
            rep_name = "concat" if rep == "raw" else rep
            prefix = ctx.method.name if source == "method" else "raw features"
            res["rows"].append({
                "id": f"{source}/{rep_name}/{opt.probe}", "source": source, "label": f"{prefix} {rep_name} (pairs)",
                "representation": rep_name, "probe": opt.probe,
                "probe_description": f"{r.description} on {PAIR_FEATURES}", "dim": r.dim,
                "metrics": finite_or_raise(r.metrics, f"pair probe on {prefix} {rep_name}"), "chance": r.chance,
                "epochs": r.epochs, "n_train": r.n_train, "n_val": r.n_val, "n_test": r.n_test})
            advance()
    res["modalities"] = list(mods)
    res["n_pairs"] = {s: int(len(p[2])) for s, p in pairs.items()}
    res["primary_metric"] = "accuracy"
    counts = ", ".join(f"{s} {n}" for s, n in res["n_pairs"].items())
    res["notes"].append(f"pairs: balanced same-group / different-group pairs within each split ({counts}); "
                        f"features {PAIR_FEATURES}; chance accuracy 0.5")
    return res


# ====================================================================================================== subsets
def modality_subsets(modalities: Sequence[str], sizes: Sequence[int] | None = None) -> list[tuple[str, ...]]:
    """Every non-empty subset of the modalities (2^M − 1), or those of the given sizes; by size, then in the data
    set's order."""
    m = len(modalities)
    sizes = list(range(1, m + 1)) if sizes is None else sorted({int(k) for k in sizes})
    bad = [k for k in sizes if not 1 <= k <= m]
    if bad or not sizes:
        raise MMIBError(f"subsets: sizes must lie in 1..{m} (the number of modalities), got {sizes}")
    return [c for k in sizes for c in itertools.combinations(modalities, k)]


def run_subsets(ctx: EvalContext, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Modality-subset protocol: the pretrained method evaluated on every non-empty subset of its modalities."""
    opt = parse_options(SubsetOptions, options, "subsets")
    _check_probe_kind(opt.probe)
    res = _result("subsets", opt)
    if ctx.spec.task == "none":
        res["notes"].append(f"skipped: data set '{ctx.spec.name}' has no labels (task none)")
        return res
    try:
        check_representation(ctx.method, opt.representation, ctx.modalities)
    except MissingCapabilityError as e:
        res["notes"].append(f"skipped: {e}")
        return res
    subsets = modality_subsets(ctx.modalities, opt.sizes)
    sources = ["method"] + (["raw"] if opt.baseline_raw else [])
    own = opt.own_predictions and ctx.capable("predict")
    with ctx.reporter.task(f"subsets ({len(subsets)})", total=len(subsets)) as advance:
        batched = _batched_subset_rows(ctx, opt, subsets, sources)
        for sub in subsets:
            name = "+".join(sub)
            extra = {"subset": list(sub), "size": len(sub)}
            for source in sources:
                rep = opt.representation if source == "method" else "raw"
                prefix = ctx.method.name if source == "method" else "raw features"
                row = (batched[(sub, source)] if batched is not None
                       else _probe_row(ctx, source, rep, opt.probe, sub, opt.probe_options, prefix, extra))
                row["id"] = f"{source}/{name}/{opt.probe}"
                row["label"] = f"{prefix} {name}"
                res["rows"].append(row)
            if own:
                res["rows"].append(_own_prediction_row(ctx, sub, f"method/{name}/own", extra))
            for k in [k for k in ctx._cache if k[1] == tuple(sub) and len(sub) > 1]:
                del ctx._cache[k]  # subsets are visited once; keep memory flat
            advance()
    res["modalities"] = list(ctx.modalities)
    res["primary_metric"] = primary_metric(ctx.spec.task)
    res["probe_description"] = PROBE_DESCRIPTIONS[ctx.spec.task][opt.probe]
    pp = ctx.plot_path("subsets_heatmap")
    if pp is not None and res["rows"]:
        from mmib.eval.plots import plot_subset_heatmap

        plot_subset_heatmap(res, pp[0])
        res["plots"]["subsets_heatmap"] = pp[1]
    return res


# ====================================================================================================== retrieval
def parse_direction(text: str, modalities: Sequence[str]) -> tuple[tuple[str, ...], str]:
    """``"resp+ecg->bvp"`` → (("resp", "ecg"), "bvp"), checked against the data set's modalities."""
    if "->" not in text:
        raise MMIBError(f"retrieval direction '{text}': expected 'query1+query2->candidate', e.g. 'fou+fac->kar'")
    q, c = text.split("->", 1)
    queries = tuple(s.strip() for s in q.split("+") if s.strip())
    cand = c.strip()
    for m in (*queries, cand):
        if m not in modalities:
            raise UnknownNameError(f"modality in retrieval direction '{text}'", m, list(modalities))
    if not queries:
        raise MMIBError(f"retrieval direction '{text}': no query modality")
    if cand in queries:
        raise MMIBError(f"retrieval direction '{text}': the candidate modality '{cand}' is also a query")
    order = {m: i for i, m in enumerate(modalities)}
    return tuple(sorted(set(queries), key=order.__getitem__)), cand


def retrieval_directions(spec: str | Sequence[str], modalities: Sequence[str]) -> list[tuple[tuple[str, ...], str]]:
    if isinstance(spec, str) and spec == "auto":
        return [(tuple(m for m in modalities if m != c), c) for c in modalities]
    if isinstance(spec, str) and spec == "pairs":
        return [((a,), b) for a in modalities for b in modalities if a != b]
    if isinstance(spec, str) and spec == "last":  # e.g. xor_align: the others determine the last modality
        return [(tuple(modalities[:-1]), modalities[-1])]
    if isinstance(spec, str):
        spec = [s for s in spec.split(",") if s.strip()]
    return [parse_direction(s, modalities) for s in spec]


@torch.no_grad()
def score_matrix(scorer: Callable[[Mapping[str, torch.Tensor], torch.Tensor], torch.Tensor],
                 queries: Mapping[str, np.ndarray], candidates: np.ndarray, chunk_size: int = 1024,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """(Nq, Nc) scores, computed in chunks of queries (memory stays O(chunk × Nc))."""
    cand = torch.as_tensor(candidates, device=device)
    n = len(next(iter(queries.values())))
    out = []
    for s in range(0, n, chunk_size):
        q = {m: torch.as_tensor(v[s : s + chunk_size], device=device) for m, v in queries.items()}
        try:
            sc = scorer(q, cand)
        except RuntimeError as e:  # e.g. query and candidate embeddings of different sizes
            shapes = {m: tuple(v.shape[1:]) for m, v in q.items()}
            raise MMIBError(f"retrieval: the scorer failed on queries {shapes} vs candidates {tuple(cand.shape[1:])}: "
                            f"{str(e).splitlines()[0]}") from e
        if tuple(sc.shape) != (len(next(iter(q.values()))), len(cand)):
            raise MMIBError(f"retrieval: the scorer returned shape {tuple(sc.shape)}, expected "
                            f"({len(next(iter(q.values())))}, {len(cand)})")
        out.append(sc.float().cpu())
    return torch.cat(out)


def run_retrieval(ctx: EvalContext, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Cross-modal retrieval: each test sample's own candidate is the single relevant one."""
    from mmib.objectives.clip import mean_cosine_score

    opt = parse_options(RetrievalOptions, options, "retrieval")
    res = _result("retrieval", opt)
    if len(ctx.modalities) < 2:
        res["notes"].append("skipped: retrieval needs at least 2 modalities")
        return res
    ks = tuple(int(k) for k in opt.ks)
    directions = retrieval_directions(opt.directions, ctx.modalities)
    res["notes"].append(f"scores: method '{ctx.method.name}' scores with its own Method.score on the embedding "
                        "space; raw features with the mean cosine (only where the raw dimensions match)")
    skipped_raw: list[str] = []
    with ctx.reporter.task(f"retrieval ({len(directions)})", total=len(directions)) as advance:
        for queries, cand in directions:
            mods = (*queries, cand)
            sf = ctx.features(opt.split, mods, [f"emb:{m}" for m in mods])
            n = len(sf.index)
            take = np.arange(n)
            if opt.max_queries is not None and n > opt.max_queries:
                take = np.sort(np.random.default_rng(ctx.seed).choice(n, int(opt.max_queries), replace=False))
            direction = f"{'+'.join(queries)}->{cand}"
            chance = retrieval_chance(len(take), ks)
            y = sf.y[take] if sf.y is not None else None
            classification = ctx.spec.task == "classification"

            def metrics_of(scores, chance=chance, y=y, classification=classification):
                extra, extra_chance = _paper_retrieval_metrics(scores, y, classification, opt.one_of_k, ctx.seed)
                return {**retrieval_metrics(scores, None, ks), **extra}, {**chance, **extra_chance}

            scores = score_matrix(ctx.method.score, {m: sf.features[f"emb:{m}"][take] for m in queries},
                                  sf.features[f"emb:{cand}"][take], opt.chunk_size, ctx.method.device)
            metrics, row_chance = metrics_of(scores)
            res["rows"].append({
                "id": f"method/{direction}", "source": "method", "label": f"{ctx.method.name} {direction}",
                "direction": direction, "queries": list(queries), "candidate": cand, "n_candidates": len(take),
                "metrics": metrics, "chance": row_chance})
            if opt.baseline_raw:
                raw = ctx.features(opt.split, mods, [f"raw:{m}" for m in mods])
                dims = {m: raw.features[f"raw:{m}"].shape[1] for m in mods}
                if len(set(dims.values())) == 1:
                    scores = score_matrix(mean_cosine_score, {m: raw.features[f"raw:{m}"][take] for m in queries},
                                          raw.features[f"raw:{cand}"][take], opt.chunk_size)
                    metrics, row_chance = metrics_of(scores)
                    res["rows"].append({
                        "id": f"raw/{direction}", "source": "raw", "label": f"raw features (cosine) {direction}",
                        "direction": direction, "queries": list(queries), "candidate": cand,
                        "n_candidates": len(take), "metrics": metrics, "chance": row_chance})
                else:
                    skipped_raw.append(direction)
            advance()
    if skipped_raw:
        res["notes"].append(f"raw-feature baseline skipped for {', '.join(skipped_raw)}: the raw dimensions of the "
                            "query and candidate modalities differ, so their cosine is undefined")
    res["primary_metric"] = "mAP"
    pp = ctx.plot_path("retrieval")
    if pp is not None and res["rows"]:
        from mmib.eval.plots import plot_retrieval

        plot_retrieval(res, pp[0])
        res["plots"]["retrieval"] = pp[1]
    return res


# ====================================================================================================== info probe
def _latent_target(name: str, values: np.ndarray, n_values: int) -> tuple[np.ndarray, str]:
    if n_values and n_values > 0:
        v = np.asarray(values)
        if v.ndim != 1:
            raise MMIBError(f"latent '{name}' is declared discrete ({n_values} values) but has shape {v.shape}; "
                            "expected (N,)")
        if v.dtype.kind == "f":
            if not np.all(np.isfinite(v)) or not np.all(v == np.round(v)):
                raise MMIBError(f"latent '{name}' is declared discrete but holds non-integer values")
            v = v.astype(np.int64)
        return v.astype(np.int64), "classification"
    v = np.asarray(values, dtype=np.float32)
    return v.reshape(len(v), -1), "regression"


def run_info_probe(ctx: EvalContext, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Information probes: which ground-truth latent each representation holds (and leaks)."""
    opt = parse_options(InfoProbeOptions, options, "info_probe")
    _check_probe_kind(opt.probe)
    res = _result("info_probe", opt)
    declared = dict(ctx.spec.latents)
    targets = list(opt.latents) if opt.latents is not None else list(declared)
    for t in targets:
        if t not in declared:
            raise UnknownNameError(f"latent of data set '{ctx.spec.name}'", t, list(declared))
    columns = [(t, declared[t]) for t in targets]
    if opt.include_label and ctx.spec.task != "none":
        columns.append(("y", (ctx.spec.n_classes or 0) if ctx.spec.task == "classification" else 0))
    if not isinstance(opt.where, Mapping):
        raise MMIBError(f"info_probe.where: expected a mapping latent -> {{latent: value}}, got {opt.where!r}")
    for lat, cond in opt.where.items():
        if lat not in [c[0] for c in columns]:
            raise UnknownNameError("latent of info_probe.where", lat, [c[0] for c in columns])
        if not isinstance(cond, Mapping) or not cond:
            raise MMIBError(f"info_probe.where.{lat}: expected a non-empty mapping {{latent: value}}, got {cond!r}")
        for c in cond:
            if c not in declared:
                raise UnknownNameError(f"latent of info_probe.where.{lat}", c, list(declared))
    if not declared:
        res["notes"].append(f"skipped: data set '{ctx.spec.name}' has no ground-truth latents")
        return res
    if opt.representations == "auto":
        reps = [f"rep:{m}" for m in ctx.modalities] + ["concat"]
        reps += ["fused"] if ctx.capable("fuse") else []
        reps += [f"component:{c}" for c in ctx.component_names()] if ctx.capable("components") else []
    else:
        reps = _expand_representations(ctx, [opt.representations] if isinstance(opt.representations, str)
                                        else opt.representations, res["notes"])
    if opt.include_raw:
        reps += [f"raw:{m}" for m in ctx.modalities] + ["raw"]
    mods = ctx.modalities
    tr, te = ctx.features("train", mods, reps), ctx.features("test", mods, reps)
    has_val = len(ctx.dm.indices["val"]) > 0
    va = ctx.features("val", mods, reps) if has_val else None
    values = np.full((len(reps), len(columns)), np.nan)
    chance_row: dict[str, float] = {}
    kinds: dict[str, str] = {}
    with ctx.reporter.task(f"information probes ({len(reps)}×{len(columns)})", total=len(reps) * len(columns)) as advance:
        for j, (lat, n_values) in enumerate(columns):
            def target(sf: SplitFeatures, lat=lat, n_values=n_values) -> tuple[np.ndarray, str]:
                if lat == "y":
                    y = sf.y
                    return (y, ctx.spec.task) if ctx.spec.task == "classification" else (y.astype(np.float32), "regression")
                if lat not in sf.latents:
                    raise MMIBError(f"latent '{lat}' is declared in the spec but missing from the batches")
                return _latent_target(lat, sf.latents[lat], n_values)

            cond = dict(opt.where.get(lat) or {})

            def rows(sf: SplitFeatures, split: str, lat=lat, cond=cond) -> np.ndarray | None:
                if not cond:
                    return None
                keep = np.ones(len(sf.y if sf.y is not None else next(iter(sf.features.values()))), dtype=bool)
                for c, value in cond.items():
                    keep &= np.asarray(sf.latents[c]).reshape(-1) == value
                if not keep.any():
                    raise MMIBError(f"info_probe.where.{lat}: no {split} row has "
                                    + ", ".join(f"{c} = {v!r}" for c, v in cond.items()))
                return keep

            ktr, kte = rows(tr, "train"), rows(te, "test")
            kva = rows(va, "val") if va is not None else None

            def sub(x: np.ndarray, keep: np.ndarray | None) -> np.ndarray:
                return x if keep is None else x[keep]

            ytr, task = target(tr)
            yte, _ = target(te)
            yva = target(va)[0] if va is not None else None
            ytr, yte = sub(ytr, ktr), sub(yte, kte)
            yva = sub(yva, kva) if yva is not None else None
            kinds[lat] = task
            score_key = "accuracy" if task == "classification" else "r2"
            for i, rep in enumerate(reps):
                cfg = ProbeConfig.from_options(opt.probe, opt.probe_options, seed=ctx.seed)
                r = fit_probe(sub(tr.features[rep], ktr), ytr,
                              sub(va.features[rep], kva) if va is not None else None, yva,
                              sub(te.features[rep], kte), yte, task,
                              n_values if task == "classification" and n_values else None, cfg)
                score = r.metrics[score_key]
                chance = r.chance[score_key] if task == "classification" else 0.0
                above = (score - chance) / (1 - chance) if task == "classification" and chance < 1 else score
                source = "raw" if rep.startswith("raw") else "method"
                res["rows"].append({
                    "id": f"{rep}/{lat}", "source": source, "representation": rep, "latent": lat, "task": task,
                    "label": f"{ctx.method.name if source == 'method' else 'raw'} {rep} → {lat}",
                    "probe": opt.probe, "probe_description": r.description,
                    "metrics": {**r.metrics, "score": score, "above_chance": above}, "chance": {"score": chance},
                    "dim": r.dim, **({"where": cond, "n_test": int(len(yte))} if cond else {})})
                values[i, j] = score
                chance_row[lat] = chance
                advance()
    for lat, cond in opt.where.items():
        res["notes"].append(f"{lat}: probed on the rows with " + ", ".join(f"{c} = {v!r}" for c, v in cond.items())
                            + " only (every split)")
    res["matrix"] = {"representations": reps, "latents": [c[0] for c in columns], "values": values.tolist(),
                     "chance": chance_row, "kinds": kinds,
                     "score": "accuracy (discrete latents) / R² (continuous latents)"}
    res["probe_description"] = PROBE_DESCRIPTIONS["classification"][opt.probe] + " / " + \
        PROBE_DESCRIPTIONS["regression"][opt.probe]
    res["primary_metric"] = "score"
    pp = ctx.plot_path("info_probe_matrix")
    if pp is not None:
        from mmib.eval.plots import plot_probe_matrix

        plot_probe_matrix(res["matrix"], pp[0], title=f"{ctx.method.name}: information probes ({opt.probe})")
        res["plots"]["info_probe_matrix"] = pp[1]
    return res


# ====================================================================================================== plots
def run_plots(ctx: EvalContext, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Training curves and 2-D maps (t-SNE; UMAP when installed) of a representation and of the raw features."""
    from mmib.eval import plots

    opt = parse_options(PlotOptions, options, "plots")
    if opt.tsne and (isinstance(opt.tsne_iterations, bool) or not isinstance(opt.tsne_iterations, int)
                     or opt.tsne_iterations < 250):
        raise MMIBError(f"plots: option tsne_iterations must be an integer >= 250, got {opt.tsne_iterations!r}")
    res = _result("plots", opt)
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


# ====================================================================================================== registry
# ====================================================================================================== oom
def run_oom(ctx: EvalContext, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    from mmib.eval.oom import evaluate_oom, oom_modality_of

    opt = parse_options(OOMOptions, options, "oom")
    res = _result("oom", opt)
    oom = oom_modality_of(ctx.method)
    # the accuracy on the agreement / disagreement set is undefined (NaN) when the set is empty
    metrics = finite_or_raise(evaluate_oom(ctx.method, ctx.dm, split=opt.split, ks=tuple(opt.ks)), "oom protocol",
                              undefined=("acc_agree", "acc_disagree"))
    for k, set_name in (("acc_agree", "agreement"), ("acc_disagree", "disagreement")):
        if isinstance(metrics.get(k), float) and math.isnan(metrics[k]):
            res["notes"].append(f"{k} undefined: the {set_name} set of the {opt.split} rows is empty")
    n_classes = ctx.spec.n_classes or 0
    chance: dict[str, float] = {"accuracy": 1.0 / n_classes} if n_classes else {}
    gallery = metrics.pop("gallery_size", None)
    if gallery:
        for k in opt.ks:
            for d in ("oom->im", "im->oom"):
                if f"R@{k}/{d}" in metrics:
                    chance[f"R@{k}/{d}"] = min(1.0, k / gallery)
        res["notes"].append(f"retrieval gallery: {int(gallery)} paired {opt.split} rows")
    else:
        res["notes"].append(f"no paired {opt.split} rows: OOM retrieval not computed")
    res["rows"].append({"id": "method/oom", "source": "method", "label": f"{ctx.method.name} OOM {oom}",
                        "oom": oom, "metrics": metrics, "chance": chance})
    res["primary_metric"] = "accuracy"
    return res


PROTOCOLS: dict[str, Callable[[EvalContext, Mapping[str, Any] | None], dict[str, Any]]] = {
    "probe": run_probe,
    "pair_probe": run_pair_probe,
    "subsets": run_subsets,
    "retrieval": run_retrieval,
    "info_probe": run_info_probe,
    "plots": run_plots,
    "oom": run_oom,
}


@dataclass
class ProtocolSpec:
    """One protocol to run: its kind, a name (unique within an evaluation; default the kind) and its options."""

    kind: str
    name: str
    options: dict[str, Any] = field(default_factory=dict)


def parse_protocols(spec: Any) -> list[ProtocolSpec]:
    """Protocols from a suite or the command line. Accepted forms of each entry:

    * ``"probe"`` — a kind with its default options;
    * ``{"subsets": {"probe": "mlp"}}`` — one key, the kind, mapping to its options;
    * ``{"protocol": "probe", "name": "probe_mlp", "probes": ["mlp"]}`` — kind, optional name, options inline.
    """
    if spec is None:
        spec = list(DEFAULT_PROTOCOLS)
    if isinstance(spec, str):
        spec = [s.strip() for s in spec.split(",") if s.strip()]
    if not isinstance(spec, (list, tuple)):
        raise MMIBError(f"protocols: expected a list, got {type(spec).__name__}")
    out: list[ProtocolSpec] = []
    for entry in spec:
        if isinstance(entry, str):
            kind, name, options = entry, entry, {}
        elif isinstance(entry, Mapping) and "protocol" in entry:
            d = dict(entry)
            kind = d.pop("protocol")
            name = d.pop("name", kind)
            options = d
        elif isinstance(entry, Mapping) and len(entry) == 1:
            kind, options = next(iter(entry.items()))
            name, options = kind, dict(options or {})
        else:
            raise MMIBError(f"protocols: cannot read entry {entry!r}; expected 'probe', {{probe: {{...}}}} or "
                            "{protocol: probe, name: ..., <options>}")
        if kind not in PROTOCOLS:
            raise UnknownNameError("protocol", str(kind), list(PROTOCOLS))
        if any(p.name == name for p in out):
            raise MMIBError(f"protocols: the name '{name}' is used twice; give one of them a 'name'")
        out.append(ProtocolSpec(kind, str(name), dict(options)))
    return out


def run_protocol(ctx: EvalContext, spec: ProtocolSpec) -> dict[str, Any]:
    t0 = time.time()
    res = PROTOCOLS[spec.kind](ctx, spec.options)
    res["name"] = spec.name
    res["seconds"] = round(time.time() - t0, 3)
    return res


__all__ = ["DEFAULT_PROTOCOLS", "PROTOCOLS", "EvalContext", "ProtocolSpec", "modality_subsets", "needs_capability",
           "pair_features", "parse_protocols", "retrieval_directions", "run_info_probe", "run_pair_probe", "run_plots", "run_probe", "run_protocol",
           "run_oom", "run_retrieval", "run_subsets", "score_matrix"]
