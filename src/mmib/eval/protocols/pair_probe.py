"""``pair_probe``: same-group pair classification (OVA-IB's trajectory-pair task on Vision & Touch): seeded, balanced
pairs of each split (:func:`~mmib.data.loaders.vision_touch.trajectory_pairs` on the data set's ``groups``), features
``[z_a, z_b, |z_a − z_b|, z_a ⊙ z_b]`` of a frozen representation, the 4-layer MLP (or linear) probe early-stopped on
val."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from mmib.errors import MMIBError
from mmib.eval.protocols.base import COMPARE_ALL, Protocol, check_probe_kind, new_result, parse_options
from mmib.eval.protocols.probe import _expand_representations, probe_tables
from mmib.eval.tables import TableData

if TYPE_CHECKING:
    from mmib.eval.protocols.context import EvalContext
    from mmib.eval.representations import SplitFeatures


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
    from mmib.eval.metrics import finite_or_raise
    from mmib.eval.probe import ProbeConfig, fit_probe

    opt = parse_options(PairProbeOptions, options, "pair_probe")
    check_probe_kind(opt.probe)
    if isinstance(opt.pairs_per_sample, bool) or not isinstance(opt.pairs_per_sample, (int, float)) \
            or not opt.pairs_per_sample > 0:
        raise MMIBError(f"pair_probe: option pairs_per_sample must be a number > 0, got {opt.pairs_per_sample!r}")
    if getattr(ctx.dm.dataset, "groups", None) is None:
        raise MMIBError(f"pair_probe: data set '{ctx.spec.name}' has no groups; the pair probe needs a group id per "
                        "sample (the trajectory / episode, e.g. vision_touch task=trajectory_pair) to tell same-group "
                        "pairs from different-group ones")
    res = new_result("pair_probe", opt)
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


def pair_probe_tables(res: Mapping[str, Any]) -> list[TableData]:
    """``pair_probe`` rows have the probe protocol's shape; the notes say how the pairs were drawn."""
    tables = probe_tables(res)
    for t in tables:
        t.title = t.title.replace("probes on frozen representations",
                                  "same-group pair classification (pairs of frozen representations)")
        t.notes = list(res.get("notes", []))
    return tables


PAIR_PROBE = Protocol("pair_probe", run_pair_probe, PairProbeOptions, pair_probe_tables, compare=COMPARE_ALL,
                      concurrent=True)
