import math

import objectives_reference as ref
import pytest
import torch

from mmib.objectives import PairwiseCLIPLoss, mean_cosine_score


@pytest.mark.parametrize("n,m,d", [(3, 2, 4), (5, 3, 6), (4, 4, 3)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("pid", [True, False])
def test_matches_float64_loop_reference(n, m, d, reduction, pid):
    zs = [torch.randn(n, d, dtype=torch.float64, requires_grad=True) for _ in range(m)]
    out = PairwiseCLIPLoss(temperature=0.3, reduction=reduction, positive_in_denominator=pid)(
        {f"m{i}": z for i, z in enumerate(zs)}
    )
    expected = ref.clip_loss(zs, 0.3, reduction, pid)
    torch.testing.assert_close(out.loss, expected)
    g = torch.autograd.grad(out.loss, zs)
    g_ref = torch.autograd.grad(expected, zs)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("n", [2, 5, 16])
def test_identical_embeddings_give_ln_n(n):
    # all rows of all modalities identical -> every logit equal -> ln N per direction and per pair
    z = torch.randn(1, 8).expand(n, 8)
    loss = PairwiseCLIPLoss(temperature=0.05, reduction="mean")({"a": z, "b": z, "c": z}).loss
    assert math.isclose(float(loss), math.log(n), rel_tol=1e-5)
    loss_sum = PairwiseCLIPLoss(temperature=0.05, reduction="sum")({"a": z, "b": z, "c": z}).loss
    assert math.isclose(float(loss_sum), 3 * math.log(n), rel_tol=1e-5)
    # decoupled form: N-1 equal negatives -> ln(N-1)
    dec = PairwiseCLIPLoss(temperature=0.05, positive_in_denominator=False)({"a": z, "b": z}).loss
    assert math.isclose(float(dec), math.log(n - 1), abs_tol=1e-5)


def test_positive_in_denominator_flag_changes_the_loss_by_the_positive_term():
    z = {"a": torch.randn(6, 4), "b": torch.randn(6, 4)}
    std = PairwiseCLIPLoss(positive_in_denominator=True)(z).loss
    dec = PairwiseCLIPLoss(positive_in_denominator=False)(z).loss
    assert dec < std  # removing a positive term from the denominator lowers every row's loss


def test_zero_embeddings_no_nan():
    zs = {k: torch.zeros(4, 5, requires_grad=True) for k in "abc"}
    out = PairwiseCLIPLoss()(zs)
    out.loss.backward()
    assert torch.isfinite(out.loss) and all(torch.isfinite(z.grad).all() for z in zs.values())


def test_learned_temperature_gets_gradient_and_bad_args():
    loss_fn = PairwiseCLIPLoss(learn_temperature=True)
    loss_fn({"a": torch.randn(4, 3), "b": torch.randn(4, 3)}).loss.backward()
    assert loss_fn.temperature.log_scale_offset.grad is not None
    with pytest.raises(ValueError, match="temperature"):
        PairwiseCLIPLoss(temperature=0)
    with pytest.raises(ValueError, match="reduction"):
        PairwiseCLIPLoss(reduction="max")


def test_gather_distributed_is_noop_without_process_group():
    z = {k: torch.randn(5, 4) for k in "abc"}
    a = PairwiseCLIPLoss(gather_distributed=True)(z).loss
    b = PairwiseCLIPLoss(gather_distributed=False)(z).loss
    torch.testing.assert_close(a, b)


def test_mean_cosine_score_values_and_shape():
    q = {"a": torch.randn(3, 4, dtype=torch.float64), "b": torch.randn(3, 4, dtype=torch.float64)}
    c = torch.randn(5, 4, dtype=torch.float64)
    s = PairwiseCLIPLoss.score(q, c)
    assert s.shape == (3, 5)
    for i in range(3):
        for j in range(5):
            expected = 0.5 * sum(float(torch.cosine_similarity(q[k][i], c[j], dim=0)) for k in "ab")
            assert math.isclose(float(s[i, j]), expected, rel_tol=1e-9)
    with pytest.raises(ValueError, match="at least one query"):
        mean_cosine_score({}, c)
