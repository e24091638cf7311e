"""Shared by the fused-pass tests (test_all_anchors.py, test_one_vs_all.py): seeded float64 embedding tuples, with
an optional degenerate case, and the float64 comparison they hold the fused pass to."""

import pytest
import torch


@pytest.fixture
def float64_embeddings():
    """``float64_embeddings(m, n, d, seed, degenerate)`` → m float64 (n, d) embeddings from a generator seeded with
    ``seed``; with ``degenerate``, a zero embedding (clamped norms, zero scores) and a vector repeated in a tuple."""

    def make(m, n, d, seed, degenerate):
        g = torch.Generator().manual_seed(seed)
        zs = [torch.randn(n, d, generator=g, dtype=torch.float64) for _ in range(m)]
        if degenerate:
            zs[1][2] = 0.0
            zs[2][3] = zs[0][3]
        return zs

    return make


@pytest.fixture
def assert_close_f64():
    """``assert_close_f64(a, b)``: equal to float64 rounding (rtol 1e-12, atol 1e-14)."""

    def close(a, b):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)

    return close
