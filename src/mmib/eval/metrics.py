"""Metrics of the evaluation protocols, with their chance levels.

* classification: accuracy, balanced accuracy, macro-F1 (scikit-learn's definitions, from the confusion counts);
* regression: MSE, MAE, R² (scikit-learn; R² variance-weighted over target dimensions);
* retrieval with one relevant candidate per query: mAP, R@k, MRR, median and mean rank (instance level), and as the
  Symile paper reports it: ``class_top1`` (Symile-M3: the best-scoring candidate has the query's class) and
  ``acc_1_of_10`` (Symile-MIMIC: the positive ranks first among itself and 9 random other candidates).

Retrieval ranks are computed here in closed form from the score matrix (vectorized, chunk-friendly); the tests check
them against ``torchmetrics.retrieval`` and hand-computed cases. Ties are ranked **pessimistically**: a candidate that
scores the same as the relevant one counts as ranked above it, so a constant scorer gets the worst rank, never the
best.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from mmib.errors import MMIBError

#: True where a larger value is better (leaderboards, "best" markers)
HIGHER_IS_BETTER = {
    "accuracy": True, "balanced_accuracy": True, "macro_f1": True, "mse": False, "mae": False, "r2": True,
    "mAP": True, "MRR": True, "R@1": True, "R@5": True, "R@10": True, "median_rank": False, "mean_rank": False,
    "above_chance": True, "class_top1": True, "acc_1_of_10": True,
}

RETRIEVAL_KS = (1, 5, 10)


def higher_is_better(metric: str) -> bool:
    if metric in HIGHER_IS_BETTER:
        return HIGHER_IS_BETTER[metric]
    if metric.startswith("R@"):
        return True
    return not (metric.endswith("rank") or metric in ("loss", "val_loss"))


def _labels(y: np.ndarray, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise MMIBError(f"{name}: class labels must be 1-D (N,), got shape {y.shape}")
    return y


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy, balanced accuracy (mean per-class recall) and macro-F1 of predicted class indices.

    Computed from the confusion counts over the classes present in ``y_true`` or ``y_pred``, as scikit-learn's
    ``accuracy_score``, ``balanced_accuracy_score`` (classes absent from ``y_true`` left out) and
    ``f1_score(average="macro", zero_division=0)`` define them (the tests compare with those), without their
    per-call input validation, which dominated the time of the 2^M − 1 subset probes' metrics."""
    y_true, y_pred = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if len(y_true) != len(y_pred) or len(y_true) == 0:
        raise MMIBError(f"classification metrics: y_true ({len(y_true)}) and y_pred ({len(y_pred)}) must have the "
                        "same non-zero length")
    labels, inv = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    t, p = inv[: len(y_true)], inv[len(y_true):]
    k = len(labels)
    true_count = np.bincount(t, minlength=k).astype(np.float64)
    pred_count = np.bincount(p, minlength=k).astype(np.float64)
    tp = np.bincount(t[t == p], minlength=k).astype(np.float64)
    present = true_count > 0
    recall = tp[present] / true_count[present]
    f1 = 2 * tp / (true_count + pred_count)  # 2TP / (2TP + FP + FN); every class here is in y_true or y_pred
    return {
        "accuracy": float(np.mean(t == p)),
        "balanced_accuracy": float(np.mean(recall)),
        "macro_f1": float(np.mean(f1)),
    }


def classification_chance(y_train: np.ndarray, y_test: np.ndarray) -> dict[str, float]:
    """The metrics of the constant predictor that always answers the train split's majority class."""
    y_train, y_test = _labels(y_train, "y_train"), _labels(y_test, "y_test")
    values, counts = np.unique(y_train, return_counts=True)
    majority = values[np.argmax(counts)]
    return classification_metrics(y_test, np.full_like(y_test, majority))


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """MSE and MAE (averaged over samples and target dimensions) and R² (variance-weighted)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    y_true = y_true.reshape(len(y_true), -1)
    y_pred = y_pred.reshape(len(y_pred), -1)
    if y_true.shape != y_pred.shape or len(y_true) == 0:
        raise MMIBError(f"regression metrics: y_true {y_true.shape} and y_pred {y_pred.shape} must have the same "
                        "non-empty shape")
    if not (np.isfinite(y_true).all() and np.isfinite(y_pred).all()):
        raise MMIBError("regression metrics: targets or predictions hold NaN or inf")
    constant = np.all(y_true.var(axis=0) == 0)
    return {
        "mse": float(mean_squared_error(y_true, y_pred)),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "r2": float("nan") if constant else float(r2_score(y_true, y_pred, multioutput="variance_weighted")),
    }


def regression_chance(y_train: np.ndarray, y_test: np.ndarray) -> dict[str, float]:
    """The metrics of the constant predictor that always answers the train split's mean."""
    y_train = np.asarray(y_train, dtype=np.float64).reshape(len(y_train), -1)
    y_test = np.asarray(y_test, dtype=np.float64).reshape(len(y_test), -1)
    return regression_metrics(y_test, np.broadcast_to(y_train.mean(0), y_test.shape))


# ---------------------------------------------------------------------------------------------------- retrieval
def ranks_of_relevant(scores: torch.Tensor | np.ndarray, relevant: torch.Tensor | np.ndarray | None = None) -> np.ndarray:
    """1-based rank of each query's single relevant candidate (higher score = better), ties pessimistic.

    Args:
        scores: (Nq, Nc) scores; finite.
        relevant: (Nq,) index of the relevant candidate of each query; default ``arange(Nq)`` (the diagonal: the
            query's own sample).
    """
    s = torch.as_tensor(scores)
    if s.dim() != 2 or s.shape[0] == 0 or s.shape[1] == 0:
        raise MMIBError(f"retrieval: scores must be a non-empty (Nq, Nc) matrix, got shape {tuple(s.shape)}")
    if not torch.isfinite(s).all():
        bad = int((~torch.isfinite(s)).any(dim=1).nonzero()[0])
        raise MMIBError(f"retrieval: the scores of query {bad} hold NaN or inf (check the method's scorer)")
    nq, nc = s.shape
    if relevant is None:
        if nq > nc:
            raise MMIBError(f"retrieval: {nq} queries but {nc} candidates; give the relevant index of each query")
        rel = torch.arange(nq)
    else:
        rel = torch.as_tensor(relevant, dtype=torch.long).reshape(-1)
        if rel.shape[0] != nq or (rel < 0).any() or (rel >= nc).any():
            raise MMIBError(f"retrieval: relevant must hold {nq} indices in [0, {nc}), got shape {tuple(rel.shape)}")
    pos = s.gather(1, rel[:, None])
    # pessimistic ties: every other candidate with score >= the relevant one's is ranked above it
    return ((s >= pos).sum(dim=1)).cpu().numpy().astype(np.int64)


def retrieval_metrics_from_ranks(ranks: np.ndarray, ks: tuple[int, ...] = RETRIEVAL_KS) -> dict[str, float]:
    """mAP, MRR, R@k, median and mean rank from the ranks of the single relevant candidate of each query.

    With one relevant candidate per query, average precision equals the reciprocal rank, so mAP == MRR; both are
    reported because with several relevant candidates they differ.
    """
    r = np.asarray(ranks, dtype=np.float64)
    if r.ndim != 1 or len(r) == 0 or (r < 1).any():
        raise MMIBError("retrieval: ranks must be a non-empty 1-D array of 1-based ranks")
    out = {"mAP": float(np.mean(1.0 / r)), "MRR": float(np.mean(1.0 / r))}
    for k in ks:
        out[f"R@{k}"] = float(np.mean(r <= k))
    out["median_rank"] = float(np.median(r))
    out["mean_rank"] = float(np.mean(r))
    return out


def retrieval_metrics(scores: torch.Tensor | np.ndarray, relevant: torch.Tensor | np.ndarray | None = None,
                      ks: tuple[int, ...] = RETRIEVAL_KS) -> dict[str, float]:
    """Retrieval metrics of a score matrix where each query has one relevant candidate (default: the diagonal)."""
    return retrieval_metrics_from_ranks(ranks_of_relevant(scores, relevant), ks)


def retrieval_chance(n_candidates: int, ks: tuple[int, ...] = RETRIEVAL_KS) -> dict[str, float]:
    """Expected metrics of a random ranking of ``n_candidates`` (uniform rank of the relevant one in 1..N).

    MRR = mAP = H_N / N (harmonic number), R@k = min(k, N) / N, median rank (N + 1) / 2, mean rank (N + 1) / 2.
    """
    n = int(n_candidates)
    if n < 1:
        raise MMIBError(f"retrieval chance: need >= 1 candidate, got {n}")
    harmonic = float(np.sum(1.0 / np.arange(1, n + 1)))
    out = {"mAP": harmonic / n, "MRR": harmonic / n}
    for k in ks:
        out[f"R@{k}"] = min(k, n) / n
    out["median_rank"] = (n + 1) / 2
    out["mean_rank"] = (n + 1) / 2
    return out


def class_top1(scores: torch.Tensor | np.ndarray, query_labels: np.ndarray, candidate_labels: np.ndarray) -> float:
    """Class-level top-1 (Symile-M3): the fraction of queries whose best-scoring candidate has the query's class.

    Ties are pessimistic, as for the ranks: a query counts only if its best candidate of its own class scores strictly
    above every candidate of another class (a constant scorer gets 0 unless all candidates share the query's class).
    """
    s = torch.as_tensor(scores, dtype=torch.float64)
    ql = torch.as_tensor(np.asarray(query_labels)).reshape(-1)
    cl = torch.as_tensor(np.asarray(candidate_labels)).reshape(-1)
    if s.dim() != 2 or s.shape != (len(ql), len(cl)) or s.numel() == 0:
        raise MMIBError(f"class_top1: scores must be (Nq, Nc) = ({len(ql)}, {len(cl)}), got {tuple(s.shape)}")
    same = ql[:, None] == cl[None, :]
    best_same = s.masked_fill(~same, float("-inf")).max(dim=1).values
    best_other = s.masked_fill(same, float("-inf")).max(dim=1).values
    return float((best_same > best_other).double().mean())


def class_top1_chance(query_labels: np.ndarray, candidate_labels: np.ndarray) -> float:
    """Expected ``class_top1`` of a random scorer: the mean over queries of the fraction of candidates of their class."""
    ql, cl = np.asarray(query_labels).reshape(-1), np.asarray(candidate_labels).reshape(-1)
    values, counts = np.unique(cl, return_counts=True)
    frac = dict(zip(values.tolist(), (counts / len(cl)).tolist()))
    return float(np.mean([frac.get(v, 0.0) for v in ql.tolist()]))


def one_of_k_accuracy(scores: torch.Tensor | np.ndarray, k: int = 10, seed: int = 0,
                      relevant: torch.Tensor | np.ndarray | None = None) -> tuple[float, int]:
    """Accuracy of picking the positive among itself and ``k − 1`` other candidates drawn at random (Symile-MIMIC's
    "1 positive among 10 candidates"), and the number of candidates used (``min(k, Nc)``).

    For each query the negatives are ``k − 1`` distinct candidates other than its relevant one, drawn with a
    ``numpy`` generator seeded with ``seed``; the query counts if its positive scores strictly above all of them
    (pessimistic ties). Chance is 1 / ``min(k, Nc)``.
    """
    s = torch.as_tensor(scores, dtype=torch.float64)
    if s.dim() != 2 or s.numel() == 0:
        raise MMIBError(f"acc_1_of_{k}: scores must be a non-empty (Nq, Nc) matrix, got shape {tuple(s.shape)}")
    nq, nc = s.shape
    rel = np.arange(nq) if relevant is None else np.asarray(relevant, dtype=np.int64).reshape(-1)
    if len(rel) != nq or (rel < 0).any() or (rel >= nc).any():
        raise MMIBError(f"acc_1_of_{k}: relevant must hold {nq} indices in [0, {nc})")
    kk = min(int(k), nc)
    if kk < 2:
        raise MMIBError(f"acc_1_of_{k}: needs at least 2 candidates, got {nc}")
    rng = np.random.default_rng(seed)
    # k − 1 distinct non-relevant candidates per query: the first k − 1 of a random order of the other Nc − 1
    order = np.argsort(rng.random((nq, nc - 1)), axis=1)[:, : kk - 1]
    negatives = order + (order >= rel[:, None])  # skip the relevant index
    pos = s[torch.arange(nq), torch.as_tensor(rel)]
    neg = s.gather(1, torch.as_tensor(negatives))
    return float((pos[:, None] > neg).all(dim=1).double().mean()), kk


def finite_or_raise(values: dict[str, float], what: str, undefined: Sequence[str] = ()) -> dict[str, float]:
    """Refuse NaN/inf in a metrics dict except where NaN is a documented 'undefined': R² of a constant target, and the
    metrics named in ``undefined`` (e.g. the accuracy on an empty agreement set)."""
    for k, v in values.items():
        if isinstance(v, float) and math.isinf(v):
            raise MMIBError(f"{what}: metric '{k}' is infinite")
        if isinstance(v, float) and math.isnan(v) and k != "r2" and k not in undefined:
            raise MMIBError(f"{what}: metric '{k}' is NaN")
    return values
