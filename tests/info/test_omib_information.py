"""mmib.info.omib_information: OMIB's β bounds (eq. 10) and the tree bound on the joint entropy against closed
forms, their errors, and the MINE-based information estimates on a small problem with a shared block."""


import numpy as np
import pytest
import torch

from mmib.info.omib_information import beta_bounds, estimate_information, joint_entropy_upper


def test_beta_bounds_two_and_three_modalities():
    rng = np.random.default_rng(0)
    for _ in range(100):
        h1, h2 = rng.uniform(0.1, 20, 2)
        i12 = rng.uniform(0, min(h1, h2))
        lo, up = beta_bounds([h1, h2], {(0, 1): i12})
        assert abs(lo - 1 / (3 * (h1 + h2))) < 1e-12 and abs(up - 1 / (3 * (h1 + h2 - i12))) < 1e-12
        assert lo <= up
    h = [2.0, 3.0, 4.0]
    mi = {(0, 1): 0.5, (0, 2): 0.3, (1, 2): 0.9}
    lo, up = beta_bounds(h, mi)
    assert abs(lo - 1 / (5 * 9.0)) < 1e-12
    assert abs(up - 1 / (5 * (9.0 - (2 / 3) * 1.7))) < 1e-12 and lo <= up


def test_joint_entropy_tree_bound_four_modalities():
    h = [1.0, 1.0, 1.0, 1.0]
    mi = {(0, 1): 0.5, (0, 2): 0.1, (0, 3): 0.2, (1, 2): 0.4, (1, 3): 0.05, (2, 3): 0.3}
    # maximum spanning tree: 0-1 (0.5), 1-2 (0.4), 2-3 (0.3)
    assert abs(joint_entropy_upper(h, mi) - (4 - 1.2)) < 1e-12
    lo, up = beta_bounds(h, mi)
    assert abs(lo - 1 / (7 * 4)) < 1e-12 and abs(up - 1 / (7 * 2.8)) < 1e-12


def test_beta_bounds_errors():
    with pytest.raises(ValueError, match="missing"):
        beta_bounds([1.0, 1.0, 1.0], {(0, 1): 0.1})
    with pytest.raises(ValueError, match="> 0"):
        beta_bounds([0.0, 1.0], {(0, 1): 0.0})
    with pytest.raises(ValueError, match="inconsistent"):
        beta_bounds([1.0, 1.0], {(0, 1): 3.0})


def test_estimate_information_small():
    torch.manual_seed(0)
    a = torch.randn(300, 2)
    x1 = torch.cat([a, torch.randn(300, 2)], 1)
    x2 = torch.cat([a, torch.randn(300, 1)], 1)
    est = estimate_information([x1, x2], steps=150, batch_size=64, lr=1e-3, hidden_dim=32, eval_batches=5)
    assert all(h > 0 for h in est.entropies)
    assert est.mutual_informations[(0, 1)] > 0.1  # the shared block is detected
    assert 0 < est.lower <= est.upper
    d = est.to_dict()
    assert d["M_l"] == est.lower and "settings" in d
