"""``xor_align``: pairwise independent, jointly dependent symbols (and the pairwise negative control)."""

import itertools

import numpy as np
import pytest
from sklearn.metrics import mutual_info_score

from mmib.data.dataset import DataValidationError
from mmib.data.registry import build_dataset


def _symbols(ds, m):
    return [ds.latents[f"symbol_m{i}"].numpy() for i in range(m)]


def _joint_code(cols, k):
    out = np.zeros_like(cols[0])
    for c in cols:
        out = out * k + c
    return out


@pytest.mark.parametrize("m,k", [(3, 2), (3, 4), (4, 3)])
def test_xor_is_pairwise_independent_and_jointly_dependent(m, k):
    n = 20000
    ds = build_dataset("xor_align", n_samples=n, n_modalities=m, n_symbols=k, seed=1)
    a = _symbols(ds, m)
    assert np.array_equal(a[-1], sum(a[:-1]) % k) and np.array_equal(ds.y.numpy(), a[-1])
    # every pair (and every strict subset against the rest) is independent: plug-in MI ~ its small-sample bias
    bias = (k - 1) ** 2 / (2 * n)
    for i, j in itertools.combinations(range(m), 2):
        assert mutual_info_score(a[i], a[j]) < 10 * bias + 1e-3
    for i in range(m):
        rest = [a[j] for j in range(m) if j != i]
        # all the others determine a_i: I(a_i; rest) = H(a_i) = ln K
        assert mutual_info_score(a[i], _joint_code(rest, k)) == pytest.approx(np.log(k), rel=0.02)
        if m > 3:  # any M − 2 of the others say nothing
            assert mutual_info_score(a[i], _joint_code(rest[1:], k)) < 0.02


def test_pairwise_control_has_no_synergy_and_observations_encode_symbols():
    n, m, k = 20000, 3, 4
    ds = build_dataset("xor_align", n_samples=n, n_modalities=m, n_symbols=k, structure="pairwise", flip=0.2, seed=2)
    a = _symbols(ds, m)
    pair = mutual_info_score(a[2], a[0])
    joint = mutual_info_score(a[2], _joint_code(a[:2], k))
    assert pair > 0.3  # pairwise dependent
    # what the others add beyond one of them is only the redundancy of a second noisy copy (no synergy term):
    # it is far below what the XOR data's pair carries jointly (ln K) and of the order of the pairwise MI
    assert joint < 2 * pair < np.log(k)
    # each modality is a noisy code of its symbol: nearest class mean decodes it
    for i in range(m):
        x = ds.x[f"m{i}"].numpy()
        means = np.stack([x[a[i] == s].mean(0) for s in range(k)])
        pred = ((x[:, None] - means[None]) ** 2).sum(-1).argmin(1)
        assert (pred == a[i]).mean() > 0.95


def test_options_are_validated_and_seeded():
    a = build_dataset("xor_align", n_samples=50, seed=3)
    b = build_dataset("xor_align", n_samples=50, seed=3)
    assert np.array_equal(a.x["m0"].numpy(), b.x["m0"].numpy())
    for bad in ({"structure": "and"}, {"n_symbols": 1}, {"flip": 1.5}, {"n_modalities": 7}, {"noise_std": -1.0}):
        with pytest.raises(DataValidationError, match="xor_align"):
            build_dataset("xor_align", **bad)
