"""The exact t-SNE of the evaluation's maps (mmib.eval.tsne): affinities, gradient against float64 finite
differences, and maps as good as scikit-learn's."""

from __future__ import annotations

import numpy as np
import pytest

from mmib.eval import tsne


def _blobs(n_per: int = 50, d: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (3, d))
    y = np.repeat(np.arange(3), n_per)
    return (centres[y] + rng.normal(0, 1, (len(y), d))).astype(np.float32), y


@pytest.mark.parametrize("perplexity", [2.0, 5.0, 15.0])
def test_conditional_probabilities_have_the_perplexity(perplexity):
    rng = np.random.default_rng(1)
    d = rng.uniform(0, 50, (40, 25)) ** 2  # squared distances of widely different scales
    p = tsne.conditional_probabilities(d, perplexity)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-12)
    entropy = -(p * np.log(np.where(p > 0, p, 1))).sum(1)
    np.testing.assert_allclose(entropy, np.log(perplexity), atol=1e-4)
    # closer neighbours are more probable
    order = np.argsort(d, 1)
    assert (np.diff(np.take_along_axis(p, order, 1), axis=1) <= 1e-15).all()


def test_joint_probabilities_symmetric_from_the_nearest_neighbours():
    x, _ = _blobs(20, 5)
    perplexity = 4.0
    p = tsne.joint_probabilities(x, perplexity)
    assert p.dtype == np.float64 and p.shape == (60, 60)
    np.testing.assert_allclose(p, p.T, atol=0)
    assert p.sum() == pytest.approx(1.0, abs=1e-12) and (p >= 0).all() and (np.diag(p) == 0).all()
    k = int(3 * perplexity + 1)
    dist = ((x[:, None].astype(np.float64) - x[None]) ** 2).sum(-1)
    np.fill_diagonal(dist, np.inf)
    near = np.zeros_like(p, dtype=bool)
    np.put_along_axis(near, np.argsort(dist, 1)[:, :k], True, 1)
    assert ((p > 0) == (near | near.T)).all()  # each row's k neighbours, symmetrized


def test_kl_gradient_matches_float64_finite_differences():
    rng = np.random.default_rng(2)
    p = tsne.joint_probabilities(rng.normal(size=(12, 4)), 3.0)
    y = rng.normal(size=(12, 2))
    grad, w = tsne.kl_gradient(y, p)
    h, num = 1e-6, np.zeros_like(y)
    for i in range(y.shape[0]):
        for j in range(2):
            e = np.zeros_like(y)
            e[i, j] = h
            num[i, j] = (tsne.kl_divergence(y + e, p) - tsne.kl_divergence(y - e, p)) / (2 * h)
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-9)
    d2 = ((y[:, None] - y[None]) ** 2).sum(-1)
    np.testing.assert_allclose(w, np.where(np.eye(12, dtype=bool), 0, 1 / (1 + d2)), rtol=1e-12)
    # float32 (the iterations' precision) with reused buffers: the same gradient to float32 rounding
    buf = np.empty((12, 12), np.float32), np.empty((12, 12), np.float32)
    g32, _ = tsne.kl_gradient(y.astype(np.float32), p.astype(np.float32), *buf)
    np.testing.assert_allclose(g32, grad, rtol=1e-4, atol=1e-6)


def test_tsne_exact_is_seeded_and_as_good_as_scikit_learn():
    from sklearn.manifold import TSNE, trustworthiness

    x, labels = _blobs()
    x = (x - x.mean(0)) / x.std(0)
    a = tsne.tsne_exact(x, 30.0, 350, seed=0)
    assert a.shape == (150, 2) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, tsne.tsne_exact(x, 30.0, 350, seed=0))
    ref = TSNE(n_components=2, perplexity=30.0, init="pca", random_state=0, max_iter=350).fit_transform(x)
    assert trustworthiness(x, a, n_neighbors=10) >= trustworthiness(x, ref, n_neighbors=10) - 0.005
    # the same objective (scikit-learn's Barnes-Hut P is built the same way) ends as low: 0.233 vs 0.231 here
    p = tsne.joint_probabilities(x, 30.0)
    assert tsne.kl_divergence(a, p) <= 1.05 * tsne.kl_divergence(ref, p)
    # the three blobs stay apart: every point's 5 nearest map neighbours are of its blob
    d = ((a[:, None] - a[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    assert (labels[np.argsort(d, 1)[:, :5]] == labels[:, None]).mean() > 0.99
