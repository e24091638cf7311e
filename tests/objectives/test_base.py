import math

import pytest
import torch
from objectives_reference import row_ce

from mmib.objectives.base import (
    LossOutput,
    Temperature,
    check_embeddings,
    check_queries,
    contrastive_ce,
    gather_candidates,
    l2_normalize,
)


def test_loss_output_requires_scalar():
    LossOutput(torch.tensor(1.0))
    with pytest.raises(ValueError, match="scalar"):
        LossOutput(torch.ones(2))


@pytest.mark.parametrize("bad", [0, 0.0, -1.0, float("nan"), float("inf"), "0.1"])
def test_temperature_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="temperature"):
        Temperature(bad)


def test_temperature_fixed_and_learned():
    fixed = Temperature(0.5)
    assert not any(p.requires_grad for p in fixed.parameters())
    assert math.isclose(float(fixed.scale()), 2.0, rel_tol=1e-6)
    learned = Temperature(0.5, learnable=True)
    assert [p.requires_grad for p in learned.parameters()] == [True]
    learned.scale().backward()
    assert learned.log_scale_offset.grad is not None
    with torch.no_grad():
        learned.log_scale_offset.fill_(100.0)  # clamped at 1 / min_temperature
    assert math.isclose(float(learned.scale().detach()), 1e3, rel_tol=1e-5)


def test_check_embeddings_errors():
    with pytest.raises(ValueError, match="at least 2"):
        check_embeddings({"a": torch.randn(3, 4)}, 2, "X")
    with pytest.raises(ValueError, match="'b'.*2-D"):
        check_embeddings({"a": torch.randn(3, 4), "b": torch.randn(3)}, 2, "X")
    with pytest.raises(ValueError, match="same shape"):
        check_embeddings({"a": torch.randn(3, 4), "b": torch.randn(2, 4)}, 2, "X")
    with pytest.raises(ValueError, match="empty"):
        check_embeddings({"a": torch.randn(0, 4), "b": torch.randn(0, 4)}, 2, "X")
    keys, vals = check_embeddings([torch.randn(2, 3), torch.randn(2, 3)])
    assert keys == ["0", "1"] and len(vals) == 2


def test_check_queries_errors():
    with pytest.raises(ValueError, match="candidates must be a 2-D"):
        check_queries({"a": torch.randn(3, 4)}, torch.randn(4))
    with pytest.raises(ValueError, match="dimension 5 but queries 4"):
        check_queries({"a": torch.randn(3, 4)}, torch.randn(2, 5))


def test_l2_normalize_zero_row_no_nan():
    z = torch.zeros(2, 3, requires_grad=True)
    out = l2_normalize(z)
    out.sum().backward()
    assert torch.equal(out, torch.zeros(2, 3))
    assert torch.isfinite(z.grad).all()


@pytest.mark.parametrize("pid", [True, False])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_contrastive_ce_matches_loop(pid, smoothing):
    if not pid and smoothing:
        with pytest.raises(ValueError, match="label smoothing"):
            contrastive_ce(torch.randn(3, 3), pid, smoothing)
        return
    logits = torch.randn(5, 7, dtype=torch.float64)
    targets = torch.tensor([0, 3, 6, 2, 2])
    got = contrastive_ce(logits, pid, smoothing, targets=targets)
    ref = sum(row_ce(list(logits[r]), int(targets[r]), pid, smoothing) for r in range(5)) / 5
    torch.testing.assert_close(got, ref)
    sq = torch.randn(4, 4, dtype=torch.float64)
    ref_sq = sum(row_ce(list(sq[r]), r, pid, smoothing) for r in range(4)) / 4
    torch.testing.assert_close(contrastive_ce(sq, pid, smoothing), ref_sq)


def test_contrastive_ce_argument_errors():
    with pytest.raises(ValueError, match="square"):
        contrastive_ce(torch.randn(3, 4))
    with pytest.raises(ValueError, match="targets must have shape"):
        contrastive_ce(torch.randn(3, 4), targets=torch.arange(2))
    with pytest.raises(ValueError, match=r"label_smoothing must lie in \[0, 1\)"):
        contrastive_ce(torch.randn(3, 3), label_smoothing=1.0)
    with pytest.raises(ValueError, match="at least 2"):
        contrastive_ce(torch.randn(1, 1), positive_in_denominator=False)


def test_gather_candidates_without_process_group_is_identity():
    zs = [torch.randn(4, 3), torch.randn(4, 3)]
    for flag in (False, True):
        cands, targets = gather_candidates(zs, flag)
        assert all(c is z for c, z in zip(cands, zs))
        assert torch.equal(targets, torch.arange(4))
