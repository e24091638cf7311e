"""mmib.info.conditioning: the conditioning inputs of the estimators (one c or a per-side pair (c_x, c_y)),
their named errors, and the same-condition negative masks."""


import pytest
import torch

from mmib.info import (
    CLUBEstimator,
    InfoNCEEstimator,
    estimate_mi,
    same_condition_mask,
)


def test_same_condition_with_a_pair_groups_by_the_joint_rows():
    cx = torch.tensor([[0.0], [0], [0], [1], [1], [0]])
    cy = torch.tensor([[0.0], [0], [1], [1], [1], [1]])
    est = InfoNCEEstimator(2, 2, c_dim=1, critic="separable", negatives="same_condition")
    _, mask = est.scores(torch.randn(6, 2), torch.randn(6, 2), (cx, cy))
    want = [[bool(cx[i, 0] == cx[j, 0] and cy[i, 0] == cy[j, 0]) for j in range(6)] for i in range(6)]
    assert mask.tolist() == want
    assert mask.tolist() != same_condition_mask(cx).tolist()  # not by c_x alone


def test_bad_per_side_conditioning_raises():
    x, y = torch.randn(4, 3), torch.randn(4, 2)
    est = InfoNCEEstimator(3, 2, c_dim=(2, 1))
    with pytest.raises(ValueError, match=r"InfoNCEEstimator: c_x must be a 2-D tensor \(4, 2\), got \(4, 1\)"):
        est(x, y, (torch.randn(4, 1), torch.randn(4, 1)))
    with pytest.raises(ValueError, match=r"c_y must be a 2-D tensor \(4, 1\), got \(3, 1\)"):
        est(x, y, (torch.randn(4, 2), torch.randn(3, 1)))
    with pytest.raises(ValueError, match=r"c_dim=\(2, 1\) \(per-side\); pass c as a pair"):
        est(x, y, torch.randn(4, 2))
    with pytest.raises(ValueError, match="pair \\(c_x, c_y\\) of two tensors, got a tuple of length 3"):
        est(x, y, (torch.randn(4, 2), torch.randn(4, 1), torch.randn(4, 1)))
    bad = torch.randn(4, 1)
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="c_y contains NaN or inf"):
        est(x, y, (torch.randn(4, 2), bad))
    with pytest.raises(ValueError, match=r"c_dim=\(2, 1\) \(per-side conditioning"):
        InfoNCEEstimator(3, 2, c_dim=(2, 1), condition_on="x")
    with pytest.raises(ValueError, match="c_dim must be an integer >= 0 or a pair"):
        InfoNCEEstimator(3, 2, c_dim=(2, 0))
    with pytest.raises(ValueError, match="condition_on='x' pass a single tensor c"):
        InfoNCEEstimator(3, 2, c_dim=1, condition_on="x")(x, y, (torch.randn(4, 1), torch.randn(4, 1)))
    with pytest.raises(ValueError, match="CLUBEstimator: c must be a single tensor"):
        CLUBEstimator(3, 2, c_dim=1, hidden_dim=4)(x, y, (torch.randn(4, 1), torch.randn(4, 1)))
    with pytest.raises(ValueError, match=r"estimate_mi: c_x must be a 2-D tensor \(10, k\)"):
        estimate_mi(torch.randn(10, 2), torch.randn(10, 2), (torch.randn(10, 1, 1), torch.randn(10, 1)),
                    negatives="batch", batch_size=4)


def test_widths_and_c_dim_checks():
    from mmib.info.conditioning import c_widths, check_c_dim, is_pair

    assert c_widths(3) == (3, 3) and c_widths((2, 5)) == (2, 5) and c_widths([1, 4]) == (1, 4)
    assert check_c_dim(0) == 0 and check_c_dim([2, 1]) == (2, 1)
    assert is_pair((1, 2)) and is_pair([1, 2]) and not is_pair(torch.zeros(2))
    for bad in (-1, True, 1.5, (1, 0), (1, 2, 3), (True, 1), "2"):
        with pytest.raises(ValueError, match="c_dim must be an integer >= 0 or a pair"):
            check_c_dim(bad)


def test_check_inputs_returns_the_pair_and_names_each_bad_argument():
    from mmib.info.conditioning import check_inputs

    x, y, c = torch.randn(4, 3), torch.randn(4, 2), torch.randn(4, 1)
    assert check_inputs(x, y, None, 3, 2, 0, "E") is None
    cx, cy = check_inputs(x, y, c, 3, 2, 1, "E")
    assert cx is c and cy is c  # one tensor conditions both sides
    pair = (torch.randn(4, 2), torch.randn(4, 1))
    assert check_inputs(x, y, pair, 3, 2, (2, 1), "E") == pair
    cases = [
        ((torch.randn(4), y, None, 0), r"E: x must be a 2-D tensor \(N, 3\), got \(4,\)"),
        ((x, [[0.0]], None, 0), r"E: y must be a 2-D tensor \(N, 2\), got list"),
        ((x, torch.randn(5, 2), None, 0), "same number of rows .* got 4 and 5"),
        ((x[:1], y[:1], None, 0), "at least 2 samples, got 1"),
        ((x, y, c, 0), "got c but the estimator was built with c_dim=0"),
        ((x, y, None, 1), "built with c_dim=1; pass the conditioning tensor c"),
        ((x, y, torch.randn(4, 2), 1), r"E: c must be a 2-D tensor \(4, 1\), got \(4, 2\)"),
    ]
    for (xx, yy, cc, cd), match in cases:
        with pytest.raises(ValueError, match=match):
            check_inputs(xx, yy, cc, 3, 2, cd, "E")
    bad = x.clone()
    bad[1, 2] = float("inf")
    with pytest.raises(ValueError, match="E: x contains NaN or inf"):
        check_inputs(bad, y, None, 3, 2, 0, "E")


def test_same_condition_mask_is_exact_row_equality():
    from mmib.info.conditioning import condition_mask

    c = torch.tensor([[0.0, 1.0], [0.0, 1.0], [1.0, 1.0], [0.0, 1.0 + 1e-6]])
    want = [[i == j or {i, j} == {0, 1} for j in range(4)] for i in range(4)]
    assert same_condition_mask(c).tolist() == want
    assert condition_mask(c, (c, c)).tolist() == want  # one tensor: by c
    cx, cy = c[:, :1], torch.tensor([[0.0], [1.0], [0.0], [1.0]])
    joint = [[bool(cx[i, 0] == cx[j, 0] and cy[i, 0] == cy[j, 0]) for j in range(4)] for i in range(4)]
    assert condition_mask((cx, cy), (cx, cy)).tolist() == joint
