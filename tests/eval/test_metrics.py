"""Metrics against independent references: torchmetrics (retrieval), hand-computed cases, scikit-learn."""

import numpy as np
import pytest
import torch
from torchmetrics.retrieval import RetrievalMAP, RetrievalMRR, RetrievalRecall

from mmib.errors import MMIBError
from mmib.eval.metrics import (
    class_top1,
    class_top1_chance,
    classification_chance,
    classification_metrics,
    one_of_k_accuracy,
    ranks_of_relevant,
    regression_chance,
    regression_metrics,
    retrieval_chance,
    retrieval_metrics,
    retrieval_metrics_from_ranks,
)


def _torchmetrics_reference(scores: torch.Tensor, relevant: torch.Tensor, k: int) -> dict[str, float]:
    nq, nc = scores.shape
    target = torch.zeros(nq, nc, dtype=torch.bool)
    target[torch.arange(nq), relevant] = True
    indexes = torch.arange(nq)[:, None].expand(nq, nc)
    out = {}
    for name, metric in (("mAP", RetrievalMAP()), ("MRR", RetrievalMRR()), (f"R@{k}", RetrievalRecall(top_k=k))):
        out[name] = float(metric(scores.flatten(), target.flatten(), indexes=indexes.flatten()))
    return out


def test_known_ranks_hand_computed():
    # relevant candidate (the diagonal) is placed at ranks 1, 2, 4, 3
    scores = torch.tensor([
        [0.9, 0.1, 0.2, 0.3],
        [0.8, 0.7, 0.1, 0.2],
        [0.9, 0.8, 0.1, 0.7],
        [0.1, 0.9, 0.8, 0.5],
    ])
    assert ranks_of_relevant(scores).tolist() == [1, 2, 4, 3]
    m = retrieval_metrics(scores, ks=(1, 2, 5))
    mrr = (1 + 1 / 2 + 1 / 4 + 1 / 3) / 4
    assert m["MRR"] == pytest.approx(mrr) and m["mAP"] == pytest.approx(mrr)
    assert m["R@1"] == 0.25 and m["R@2"] == 0.5 and m["R@5"] == 1.0
    assert m["median_rank"] == 2.5 and m["mean_rank"] == 2.5


@pytest.mark.parametrize("nq,nc,k", [(7, 7, 1), (20, 20, 5), (50, 30, 10), (33, 64, 5)])
def test_against_torchmetrics(nq, nc, k):
    g = torch.Generator().manual_seed(nq * nc)
    # torchmetrics (1.9) counts a candidate with a score <= 0 as not retrieved at all, so the reference gets
    # positive scores; the ranking, and so our metrics, are unchanged by the shift
    scores = torch.rand(nq, nc, generator=g, dtype=torch.float64) + 0.01
    relevant = torch.randint(0, nc, (nq,), generator=g)
    ours = retrieval_metrics(scores, relevant, ks=(k,))
    ref = _torchmetrics_reference(scores, relevant, k)
    for name, v in ref.items():
        assert ours[name] == pytest.approx(v, abs=1e-6), name


def test_ties_are_pessimistic_and_nan_is_an_error():
    ranks = ranks_of_relevant(torch.zeros(5, 5))
    assert ranks.tolist() == [5] * 5  # a constant scorer never looks good
    s = torch.randn(4, 4)
    s[2, 1] = float("nan")
    with pytest.raises(MMIBError, match="query 2 hold NaN"):
        retrieval_metrics(s)
    with pytest.raises(MMIBError, match="relevant must hold 3 indices"):
        retrieval_metrics(torch.randn(3, 4), relevant=[0, 1, 4])


@pytest.mark.parametrize("n", [1, 4, 10, 301])
def test_chance_is_the_expectation_under_a_uniform_rank(n):
    # a uniformly random rank takes every value 1..n equally often: its expected metrics are their average
    every_rank = retrieval_metrics_from_ranks(np.arange(1, n + 1))
    chance = retrieval_chance(n)
    for k in ("mAP", "MRR", "R@1", "R@5", "R@10", "median_rank", "mean_rank"):
        assert chance[k] == pytest.approx(every_rank[k]), k


def test_chance_matches_random_scores():
    rng = np.random.default_rng(0)
    vals = [retrieval_metrics(rng.normal(size=(100, 100)))["R@10"] for _ in range(50)]
    assert np.mean(vals) == pytest.approx(retrieval_chance(100)["R@10"], abs=0.01)


def test_classification_metrics_hand_computed():
    y = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 1, 1, 1, 2, 0])
    m = classification_metrics(y, p)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx((0.5 + 1 + 0.5) / 3)
    f1 = [0.5, 2 * (2 / 3) * 1 / (2 / 3 + 1), 2 * 1 * 0.5 / 1.5]
    assert m["macro_f1"] == pytest.approx(np.mean(f1))
    c = classification_chance(np.array([1, 1, 1, 0]), y)
    assert c["accuracy"] == pytest.approx(2 / 6) and c["balanced_accuracy"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("seed", range(4))
def test_classification_metrics_match_scikit_learn(seed):
    """The confusion-count implementation against scikit-learn's accuracy, balanced accuracy (classes absent from
    y_true left out) and macro-F1 (zero_division=0), on labels where predictions miss classes or add new ones."""
    import warnings

    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    rng = np.random.default_rng(seed)
    for _ in range(200):
        n, k = int(rng.integers(1, 50)), int(rng.integers(1, 7))
        y_true = rng.integers(0, k, n)
        y_pred = rng.integers(0, k + 2, n) if rng.random() < 0.8 else y_true.copy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = {"accuracy": accuracy_score(y_true, y_pred),
                   "balanced_accuracy": balanced_accuracy_score(y_true, y_pred),
                   "macro_f1": f1_score(y_true, y_pred, average="macro", zero_division=0)}
        got = classification_metrics(y_true, y_pred)
        assert got.keys() == ref.keys()
        for name, value in ref.items():
            assert got[name] == pytest.approx(value, abs=1e-12), (name, y_true, y_pred)


def test_regression_metrics_hand_computed():
    m = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 5.0]))
    assert m["mse"] == pytest.approx(4 / 3) and m["mae"] == pytest.approx(2 / 3)
    assert m["r2"] == pytest.approx(1 - 4 / 2)
    c = regression_chance(np.array([0.0, 4.0]), np.array([1.0, 3.0]))
    assert c["mse"] == pytest.approx(1.0) and c["r2"] == pytest.approx(0.0)
    with pytest.raises(MMIBError, match="NaN"):
        regression_metrics(np.array([1.0, np.nan]), np.array([1.0, 2.0]))


def test_class_top1_hand_computed_and_pessimistic_ties():
    scores = torch.tensor([[0.9, 0.1, 0.5], [0.2, 0.8, 0.8], [0.3, 0.3, 0.1]])
    labels = np.array([0, 1, 0])
    # q0: best candidate 0 (class 0) -> right; q1: tie between candidate 1 (class 1) and 2 (class 0) -> wrong;
    # q2 (class 0): tie between candidates 0 (class 0) and 1 (class 1) -> wrong
    assert class_top1(scores, labels, labels) == pytest.approx(1 / 3)
    assert class_top1(torch.zeros(3, 3), labels, labels) == 0.0
    assert class_top1_chance(labels, labels) == pytest.approx((2 / 3 + 1 / 3 + 2 / 3) / 3)
    with pytest.raises(MMIBError, match="class_top1"):
        class_top1(scores, labels[:2], labels)


def test_class_top1_random_scores_match_chance():
    g = torch.Generator().manual_seed(0)
    y = np.random.default_rng(0).integers(0, 4, 3000)
    got = class_top1(torch.rand(3000, 3000, generator=g), y, y)
    assert got == pytest.approx(class_top1_chance(y, y), abs=0.02)


def test_one_of_k_accuracy():
    n = 400
    perfect = torch.eye(n)
    assert one_of_k_accuracy(perfect, 10, seed=0) == (1.0, 10)
    assert one_of_k_accuracy(-perfect, 10, seed=0)[0] == 0.0
    acc, used = one_of_k_accuracy(torch.rand(n, n, generator=torch.Generator().manual_seed(1)), 10, seed=0)
    assert used == 10 and acc == pytest.approx(0.1, abs=0.05)
    # the positive beats exactly the candidates scored below it: with scores = -|i - j| and rank by distance, the
    # accuracy is 1 unless a tie (distance 0 only for the positive) -> 1; with a constant row, ties -> 0
    assert one_of_k_accuracy(torch.ones(5, 5), 10)[0] == 0.0 and one_of_k_accuracy(torch.ones(5, 5), 10)[1] == 5
    # negatives are distinct and never the positive: a score matrix where only the positive and one other candidate
    # beat zero shows the draw includes that candidate in (k-1)/(n-1) of the queries
    s = torch.zeros(n, n)
    s[torch.arange(n), torch.arange(n)] = 1.0
    s[torch.arange(n), (torch.arange(n) + 1) % n] = 2.0
    acc, _ = one_of_k_accuracy(s, 10, seed=3)
    assert acc == pytest.approx(1 - 9 / (n - 1), abs=0.04)
    with pytest.raises(MMIBError):
        one_of_k_accuracy(torch.ones(1, 1), 10)
