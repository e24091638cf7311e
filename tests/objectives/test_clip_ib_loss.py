import objectives_reference as ref
import pytest
import torch
from objectives_reference import assert_matches

from mmib.objectives import PairwiseCLIPIBLoss, PairwiseCLIPLoss


@pytest.mark.parametrize("n,m,d", [(3, 2, 4), (5, 3, 6), (4, 4, 3)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_matches_float64_loop_reference(n, m, d, reduction):
    zs = [torch.randn(n, d, dtype=torch.float64, requires_grad=True) for _ in range(m)]
    out = PairwiseCLIPIBLoss(temperature=0.2, beta=0.7, reduction=reduction)(
        {f"m{i}": z for i, z in enumerate(zs)}
    )
    assert_matches(out.loss, ref.clip_ib_loss(zs, 0.2, 0.7, reduction), zs)


def test_beta_zero_is_pairwise_clip_and_terms():
    z = {k: torch.randn(6, 5) for k in "abc"}
    out = PairwiseCLIPIBLoss(beta=0.0)(z)
    torch.testing.assert_close(out.loss, PairwiseCLIPLoss()(z).loss)
    assert {"alignment", "minimality", "temperature", "clip_a_b", "minimality_b_c"} <= set(out.terms)


def test_minimality_is_zero_for_aligned_and_two_for_opposite():
    z = torch.randn(5, 4)
    assert float(PairwiseCLIPIBLoss(beta=1.0)({"a": z, "b": 3 * z}).terms["minimality"]) == pytest.approx(
        0, abs=1e-6
    )
    assert float(PairwiseCLIPIBLoss(beta=1.0)({"a": z, "b": -z}).terms["minimality"]) == pytest.approx(
        2, abs=1e-6
    )


def test_decoupled_flag_zero_embeddings_and_bad_args():
    z = {k: torch.randn(5, 4) for k in "ab"}
    assert PairwiseCLIPIBLoss(positive_in_denominator=False)(z).loss < PairwiseCLIPIBLoss()(z).loss
    zeros = {k: torch.zeros(3, 4, requires_grad=True) for k in "ab"}
    out = PairwiseCLIPIBLoss()(zeros)
    out.loss.backward()
    assert torch.isfinite(out.loss) and all(torch.isfinite(t.grad).all() for t in zeros.values())
    with pytest.raises(ValueError, match="beta"):
        PairwiseCLIPIBLoss(beta=-1)
    with pytest.raises(ValueError, match="temperature"):
        PairwiseCLIPIBLoss(temperature=0)
    with pytest.raises(ValueError, match="reduction"):
        PairwiseCLIPIBLoss(reduction="none")
    torch.testing.assert_close(
        PairwiseCLIPIBLoss(gather_distributed=True)(z).loss, PairwiseCLIPIBLoss()(z).loss
    )


def test_score_is_mean_cosine():
    q = {"a": torch.randn(3, 4), "b": torch.randn(3, 4)}
    c = torch.randn(6, 4)
    torch.testing.assert_close(PairwiseCLIPIBLoss().score(q, c), PairwiseCLIPLoss.score(q, c))
