"""The controls suite's GRAM / TRIANGLE argument (docs/results/controls.md, "CLIP+IB, GRAM and TRIANGLE"): their
retrieval scores are nonlinear functions of the pairwise cosines that *can* rank the binary XOR (x3 = x1 ⊕ x2) first
on every query, which no sum of pairwise terms (pairwise CLIP's mean cosine) can. Checked with the package's own
scorers in float64 on explicit embeddings, against closed forms."""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch

from mmib.objectives.clip import mean_cosine_score
from mmib.objectives.gram import GRAMLoss
from mmib.objectives.triangle import TriangleLoss

QUERIES = list(itertools.product([0, 1], repeat=2))  # (x1, x2); the XOR-consistent candidate is x1 ^ x2

# TRIANGLE: six unit vectors in R^4 found by a numerical search (Nelder-Mead on the smallest margin); z[m][bit]
TRIANGLE_Z = np.array([
    [[-0.339456, -0.046535, -0.570123, 0.746702], [0.01076, -0.996356, -0.037082, -0.076052]],
    [[-0.096728, 0.860348, -0.499841, -0.024563], [0.562993, 0.073134, -0.052103, -0.821569]],
    [[0.183783, 0.747556, 0.134577, -0.623917], [0.433407, -0.107607, -0.879883, -0.162437]],
])


def gram_embeddings() -> np.ndarray:
    """z1(x) = ((-1)^x u + v)/√2, z2(x) = ((-1)^x u + w)/√2, z3(x) = ((-1)^x v − w)/√2; (3 modalities, 2 bits, 3)."""
    u, v, w = np.eye(3)
    z = np.empty((3, 2, 3))
    for x in (0, 1):
        s = (-1.0) ** x
        z[0, x] = (s * u + v) / math.sqrt(2)
        z[1, x] = (s * u + w) / math.sqrt(2)
        z[2, x] = (s * v - w) / math.sqrt(2)
    return z


def scores(score_fn, z: np.ndarray) -> np.ndarray:
    """(4 queries, 2 candidates x3 = 0, 1) scores; queries (z1(x1), z2(x2)) in the order of QUERIES."""
    t = torch.as_tensor(z, dtype=torch.float64)
    q1 = torch.stack([t[0, x1] for x1, _ in QUERIES])
    q2 = torch.stack([t[1, x2] for _, x2 in QUERIES])
    return score_fn([q1, q2], t[2]).detach().numpy()


def xor_margins(s: np.ndarray) -> np.ndarray:
    """score of the XOR-consistent candidate minus the other one's, per query."""
    return np.array([s[i, x1 ^ x2] - s[i, 1 - (x1 ^ x2)] for i, (x1, x2) in enumerate(QUERIES)])


def test_gram_volume_ranks_the_parity_first_closed_form():
    z = gram_embeddings()
    s = scores(GRAMLoss().score, z)
    # closed form: det G = 1/4 - 1/4 (-1)^(x1+x2+x3): volume 0 with the parity, 1/sqrt(2) without it
    for i, (x1, x2) in enumerate(QUERIES):
        for x3 in (0, 1):
            det = 0.25 - 0.25 * (-1.0) ** (x1 + x2 + x3)
            assert abs(-s[i, x3] - math.sqrt(det)) < 1e-4  # the 1e-10 ridge: a zero volume reads about 1.2e-5
    assert xor_margins(s).min() > 0.7
    # float64 reference: sqrt(det) of the 3x3 Gram matrix
    for i, (x1, x2) in enumerate(QUERIES):
        for x3 in (0, 1):
            a = np.stack([z[0, x1], z[1, x2], z[2, x3]])
            assert abs(-s[i, x3] - math.sqrt(max(np.linalg.det(a @ a.T), 0.0))) < 1e-4


def test_triangle_area_ranks_the_parity_first():
    z = TRIANGLE_Z / np.linalg.norm(TRIANGLE_Z, axis=2, keepdims=True)
    s = scores(TriangleLoss().score, z)
    m = xor_margins(s)
    assert m.min() > 0.25, m  # the package's area is half of ‖u‖²‖w‖² − (u·w)²: margins 0.28-0.29
    for i, (x1, x2) in enumerate(QUERIES):  # float64 reference, the candidate as the triangle's anchor
        for x3 in (0, 1):
            uu, ww = z[2, x3] - z[0, x1], z[2, x3] - z[1, x2]
            assert abs(-s[i, x3] - 0.5 * ((uu @ uu) * (ww @ ww) - (uu @ ww) ** 2)) < 1e-9


def test_no_sum_of_pairwise_cosines_ranks_all_four_queries():
    rng = np.random.default_rng(0)
    z = gram_embeddings()
    assert (xor_margins(scores(mean_cosine_score, z)) > 0).sum() <= 3
    for _ in range(2000):
        z = rng.standard_normal((3, 2, int(rng.integers(2, 9))))
        m = xor_margins(scores(mean_cosine_score, z))
        assert (m > 1e-12).sum() <= 3
        # the four margins are ±(Δg(x1) + Δh(x2)): the two XOR-even ones and the two XOR-odd ones sum to minus
        # each other
        assert abs(m[0] + m[3] + m[1] + m[2]) < 1e-9
