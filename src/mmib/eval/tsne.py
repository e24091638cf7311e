"""Exact t-SNE in numpy for the evaluation's maps (a few hundred to a thousand points).

scikit-learn's default t-SNE (Barnes–Hut) spends almost all of its time in the gradient's tree code: 0.5–0.65 s of
CPU for the 300 test rows of the 6-view digits at 350 iterations, more than drawing the figure. At that size the
exact gradient, written as a few dense N × N array operations, costs a third of it (docs/results/speed.md). The
algorithm is scikit-learn's, step for step, except for that gradient (exact here, Barnes–Hut there) and the
convergence checks (a fixed number of iterations here):

* affinities from the ``3 · perplexity + 1`` nearest neighbours of each row (squared Euclidean distances), each row's
  Gaussian bandwidth found by bisection so that its conditional distribution has the given perplexity (entropy
  ``log(perplexity)`` nats within 1e-5), then symmetrized and normalized: ``P = (P_c + P_cᵀ) / sum``;
* initialization by PCA (scikit-learn's randomized PCA with the seed), scaled to a first-axis standard deviation of
  1e-4;
* gradient descent with momentum 0.5 and the affinities exaggerated 12× for the first 250 iterations, then momentum
  0.8 from a zero update and unit gains again; per-coordinate gains (+0.2 when the gradient changes sign, × 0.8
  otherwise, at least 0.01); learning rate ``max(N / 12 / 4, 50)`` (scikit-learn's "auto").

For more than :data:`EXACT_MAX_POINTS` points :func:`mmib.eval.plots.embed_2d` uses scikit-learn's Barnes–Hut t-SNE.
"""

from __future__ import annotations

import numpy as np

#: the most points the exact t-SNE is used for (its time and memory grow as N²; above it scikit-learn's Barnes–Hut).
#: 350 iterations on the digits' concatenated representations, 1 thread: 600 rows 0.69 s exact vs 1.06 s Barnes–Hut,
#: 1000 rows 2.53 vs 1.66 s, the same trustworthiness (0.992 / 0.991, 0.993 / 0.993)
EXACT_MAX_POINTS = 700
#: scikit-learn's schedule: early exaggeration, its iterations, the learning rate's floor
EXAGGERATION = 12.0
EXPLORATION_ITERATIONS = 250


def conditional_probabilities(sq_dist: np.ndarray, perplexity: float, tol: float = 1e-5,
                              steps: int = 100) -> np.ndarray:
    """Row-wise Gaussian probabilities ``exp(-β_i d_ij) / Σ_j exp(-β_i d_ij)`` of squared distances ``sq_dist``
    (N × k, each row's neighbours), with each ``β_i`` found by bisection (scikit-learn's rule: doubling / halving
    until bracketed) so that the row's entropy is ``log(perplexity)`` within ``tol`` nats."""
    d = np.asarray(sq_dist, dtype=np.float64)
    d = d - d.min(1, keepdims=True)  # the entropy and the probabilities do not change; exp does not underflow
    n = len(d)
    target = np.log(perplexity)
    beta, lo, hi = np.ones(n), np.full(n, -np.inf), np.full(n, np.inf)
    todo = np.arange(n)
    for _ in range(steps):
        dt, bt = d[todo], beta[todo]
        p = np.exp(-dt * bt[:, None])
        s = p.sum(1)
        entropy = np.log(s) + bt * (dt * p).sum(1) / s
        diff = entropy - target
        keep = np.abs(diff) > tol
        todo, diff, bt = todo[keep], diff[keep], bt[keep]
        if not len(todo):
            break
        up = diff > 0  # too flat: a larger beta
        lo[todo[up]], hi[todo[~up]] = bt[up], bt[~up]
        low, high = lo[todo], hi[todo]
        beta[todo] = np.where(up, np.where(np.isinf(high), bt * 2, (bt + high) / 2),
                              np.where(np.isinf(low), bt / 2, (bt + low) / 2))
    p = np.exp(-d * beta[:, None])
    return p / p.sum(1, keepdims=True)


def joint_probabilities(x: np.ndarray, perplexity: float) -> np.ndarray:
    """The symmetric affinities ``P`` (N × N, float64, summing to 1) of the rows of ``x`` from their
    ``min(N - 1, 3 · perplexity + 1)`` nearest neighbours."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    k = min(n - 1, int(3.0 * perplexity + 1))
    sq = (x * x).sum(1)
    dist = np.maximum(sq[:, None] + sq[None, :] - 2.0 * (x @ x.T), 0.0)
    np.fill_diagonal(dist, np.inf)
    nb = np.argpartition(dist, k - 1, axis=1)[:, :k]
    p = np.zeros((n, n))
    np.put_along_axis(p, nb, conditional_probabilities(np.take_along_axis(dist, nb, 1), perplexity), 1)
    p += p.T
    return p / p.sum()


def kl_gradient(y: np.ndarray, p: np.ndarray, w: np.ndarray | None = None,
                m: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The gradient of ``KL(P ‖ Q)`` at the embedding ``y`` (N × 2), with ``Q ∝ 1 / (1 + ‖y_i − y_j‖²)``
    (``i ≠ j``): ``4 Σ_j (p_ij − q_ij) w_ij (y_i − y_j)``, computed in ``y``'s precision; and the kernel ``w``
    (the N × N buffers ``w`` and ``m`` are reused when given)."""
    w = np.matmul(y, y.T, out=w)
    w *= -2.0
    sq = (y * y).sum(1)
    w += sq[:, None]
    w += sq[None, :]
    w += 1.0
    np.reciprocal(w, out=w)
    np.fill_diagonal(w, 0.0)
    m = np.divide(w, -float(w.sum(dtype=np.float64)), out=m)  # -q
    m += p
    m *= w
    return 4.0 * (m.sum(1)[:, None] * y - m @ y), w


def kl_divergence(y: np.ndarray, p: np.ndarray) -> float:
    """``KL(P ‖ Q)`` at the embedding ``y`` (float64), the objective :func:`kl_gradient` differentiates."""
    y, p = np.asarray(y, dtype=np.float64), np.asarray(p, dtype=np.float64)
    w = 1.0 / (1.0 + ((y[:, None, :] - y[None, :, :]) ** 2).sum(-1))
    np.fill_diagonal(w, 0.0)
    q = w / w.sum()
    nz = p > 0
    return float((p[nz] * np.log(p[nz] / q[nz])).sum())


def tsne_exact(x: np.ndarray, perplexity: float = 30.0, iterations: int = 1000, seed: int = 0) -> np.ndarray:
    """2-D t-SNE coordinates (N × 2, float32) of the rows of ``x`` (see the module's docstring): ``iterations``
    gradient steps in all, the first 250 of them with early exaggeration."""
    from sklearn.decomposition import PCA

    x = np.asarray(x, dtype=np.float32)
    n = len(x)
    p = joint_probabilities(x, perplexity).astype(np.float32)
    y = PCA(n_components=2, svd_solver="randomized", random_state=seed).fit_transform(x).astype(np.float32)
    y *= np.float32(1e-4 / np.std(y[:, 0]))
    rate = np.float32(max(n / EXAGGERATION / 4.0, 50.0))
    update, gains = np.zeros_like(y), np.ones_like(y)
    w, m = np.empty((n, n), np.float32), np.empty((n, n), np.float32)
    target = p * np.float32(EXAGGERATION)
    for it in range(int(iterations)):
        if it == EXPLORATION_ITERATIONS:  # scikit-learn's second phase starts from no update and unit gains
            target, update, gains = p, np.zeros_like(y), np.ones_like(y)
        momentum = np.float32(0.5 if it < EXPLORATION_ITERATIONS else 0.8)
        grad, _ = kl_gradient(y, target, w, m)
        flip = update * grad < 0
        gains = np.maximum(np.where(flip, gains + np.float32(0.2), gains * np.float32(0.8)), np.float32(0.01))
        update = momentum * update - rate * (gains * grad)
        y += update
    return y
