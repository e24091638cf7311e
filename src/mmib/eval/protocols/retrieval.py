"""``retrieval``: queries = a set of modalities, candidates = another (``resp+ecg->bvp``), scored with the method's own
``score``; mAP, R@1/5/10, MRR, median rank, and the Symile paper's ``class_top1`` / ``acc_1_of_10``, chance beside."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from mmib.errors import MMIBError, UnknownNameError
from mmib.eval.protocols.base import Protocol, new_result, parse_options
from mmib.eval.tables import TableData, fmt

if TYPE_CHECKING:
    import torch

    from mmib.eval.protocols.context import EvalContext

RETRIEVAL_COLUMNS = ("mAP", "R@1", "R@5", "R@10", "MRR", "median_rank")


def _default_ks() -> list[int]:
    from mmib.eval.metrics import RETRIEVAL_KS

    return list(RETRIEVAL_KS)


@dataclass
class RetrievalOptions:
    """``retrieval``: ``directions`` is ``auto`` (every modality as the candidate, all the others as queries),
    ``pairs`` (every ordered pair ``a->b``), ``last`` (all the others → the last modality) or a list like
    ``["resp+ecg->bvp"]``."""

    directions: str | list[str] = "auto"
    split: str = "test"
    ks: list[int] = field(default_factory=_default_ks)
    baseline_raw: bool = True
    max_queries: int | None = None
    chunk_size: int = 1024
    #: candidates of ``acc_1_of_10``-style accuracy (the positive among itself and n_candidates − 1 random others)
    one_of_k: int = 10


def _paper_retrieval_metrics(scores: torch.Tensor, y: np.ndarray | None, classification: bool, k: int,
                             seed: int) -> tuple[dict[str, float], dict[str, float]]:
    """The Symile paper's retrieval metrics beside the instance-level ones, with their chance levels:
    ``class_top1`` (classification data: the best candidate has the query's class) and ``acc_1_of_<k>``."""
    from mmib.eval.metrics import class_top1, class_top1_chance, one_of_k_accuracy

    metrics, chance = {}, {}
    if classification and y is not None:
        metrics["class_top1"] = class_top1(scores, y, y)
        chance["class_top1"] = class_top1_chance(y, y)
    if scores.shape[1] >= 2:
        acc, used = one_of_k_accuracy(scores, k, seed)
        metrics[f"acc_1_of_{k}"], chance[f"acc_1_of_{k}"] = acc, 1.0 / used
    return metrics, chance


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


def score_matrix(scorer: Callable[[Mapping[str, torch.Tensor], torch.Tensor], torch.Tensor],
                 queries: Mapping[str, np.ndarray], candidates: np.ndarray, chunk_size: int = 1024,
                 device: torch.device | str = "cpu") -> torch.Tensor:
    """(Nq, Nc) scores, computed in chunks of queries (memory stays O(chunk × Nc)), without gradients."""
    import torch

    with torch.no_grad():
        cand = torch.as_tensor(candidates, device=device)
        n = len(next(iter(queries.values())))
        out = []
        for s in range(0, n, chunk_size):
            q = {m: torch.as_tensor(v[s : s + chunk_size], device=device) for m, v in queries.items()}
            try:
                sc = scorer(q, cand)
            except RuntimeError as e:  # e.g. query and candidate embeddings of different sizes
                shapes = {m: tuple(v.shape[1:]) for m, v in q.items()}
                raise MMIBError(f"retrieval: the scorer failed on queries {shapes} vs candidates "
                                f"{tuple(cand.shape[1:])}: {str(e).splitlines()[0]}") from e
            if tuple(sc.shape) != (len(next(iter(q.values()))), len(cand)):
                raise MMIBError(f"retrieval: the scorer returned shape {tuple(sc.shape)}, expected "
                                f"({len(next(iter(q.values())))}, {len(cand)})")
            out.append(sc.float().cpu())
        return torch.cat(out)


def run_retrieval(ctx: EvalContext, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Cross-modal retrieval: each test sample's own candidate is the single relevant one."""
    from mmib.eval.metrics import retrieval_chance, retrieval_metrics
    from mmib.objectives.clip import mean_cosine_score

    opt = parse_options(RetrievalOptions, options, "retrieval")
    res = new_result("retrieval", opt)
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

            scores = score_matrix(partial(ctx.run_method, ctx.method.score), {m: sf.features[f"emb:{m}"][take] for m in queries},
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

        ctx.draw(plot_retrieval, copy.deepcopy(res), pp[0])  # beside the next protocols
        res["plots"]["retrieval"] = pp[1]
    return res


def retrieval_tables(res: Mapping[str, Any]) -> list[TableData]:
    rows = res["rows"]
    if not rows:
        return []
    cols = [c for c in RETRIEVAL_COLUMNS if c in rows[0]["metrics"]] or list(rows[0]["metrics"])
    headers = ["scorer", "queries → candidates", "N", *cols]
    body = []
    last_dir = None
    for r in rows:
        body.append([r["source"] if r["source"] == "raw" else r["label"].split(" ")[0], r["direction"].replace("->", " → "),
                     str(r["n_candidates"]), *[fmt(r["metrics"][c], c) for c in cols]])
        nxt = rows.index(r) + 1
        last_dir = r["direction"]
        if nxt == len(rows) or rows[nxt]["direction"] != last_dir:
            body.append(["chance", r["direction"].replace("->", " → "), str(r["n_candidates"]),
                         *[fmt(r["chance"][c], c) for c in cols]])
    return [TableData(f"{res['name']}: cross-modal retrieval (one relevant candidate per query: mAP = MRR)",
                      headers, body, [])]


RETRIEVAL = Protocol("retrieval", run_retrieval, RetrievalOptions, retrieval_tables, compare=("mAP", "R@1"),
                     plots=("retrieval",), concurrent=True)
