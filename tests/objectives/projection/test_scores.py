"""mmib.objectives.projection.scores: the OVA-IB projection score (the cosine between an anchor and its
projection onto the span of a candidate tuple) against a float64 explicit-projection loop reference and closed
forms, its hand-written backward against finite differences, and the M = 2 |cos| path against the general
algebra."""

import math

import objectives_reference as ref
import torch

from mmib.objectives import OVAIBLoss, projection_score


def test_score_matrix_matches_explicit_projection():
    a = torch.randn(5, 7, dtype=torch.float64)
    t = [torch.randn(4, 7, dtype=torch.float64) for _ in range(3)]
    s = projection_score(a, t, ridge=1e-8)
    for i in range(5):
        for j in range(4):
            assert math.isclose(
                float(s[i, j]), float(ref.projection_cos(a[i], [x[j] for x in t], 1e-8)), rel_tol=1e-9
            )
    assert float(s.min()) >= 0.0 and float(s.max()) <= 1.0 + 1e-9


def test_score_is_one_in_the_span_and_zero_orthogonal():
    t = [torch.randn(1, 8, dtype=torch.float64) for _ in range(3)]
    inside = 0.3 * t[0] - 2.0 * t[1] + 0.7 * t[2]
    assert math.isclose(float(projection_score(inside, t)), 1.0, rel_tol=1e-9)
    e = torch.eye(8, dtype=torch.float64)
    assert abs(float(projection_score(e[:1], [e[1:2], e[2:3]]))) < 1e-12


def test_score_is_abs_cos_for_two_modalities_and_sign_blind():
    a, b = torch.randn(6, 5, dtype=torch.float64), torch.randn(6, 5, dtype=torch.float64)
    s = projection_score(a, [b])
    cos = torch.nn.functional.normalize(a, dim=1) @ torch.nn.functional.normalize(b, dim=1).T
    torch.testing.assert_close(s, cos.abs())
    torch.testing.assert_close(projection_score(-a, [b]), s)
    # the M = 2 sufficiency term is therefore CLIP on |cos|, not CLIP: z and −z are equally good positives
    zs = {"a": a, "b": b}
    torch.testing.assert_close(OVAIBLoss(beta=0.0)(zs).loss, OVAIBLoss(beta=0.0)({"a": -a, "b": b}).loss)


def test_score_gradcheck_with_a_large_ridge_and_unnormalized_inputs():
    # a large λ makes the λ‖K⁻¹c‖² part of ‖p‖² (and its gradient terms) matter; inputs not normalized
    from mmib.objectives.ova_ib import projection_score_from_gram, rowwise_gram

    a = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    t = [torch.randn(5, 3, dtype=torch.float64, requires_grad=True) for _ in range(2)]

    def f(a, t0, t1):
        return projection_score_from_gram([a @ t0.T, a @ t1.T], rowwise_gram([t0, t1]), (a * a).sum(-1), 0.7)

    assert torch.autograd.gradcheck(f, (a, *t))


def test_score_backward_leaves_a_shared_incoming_gradient_untouched():
    # autograd hands the same gradient tensor to both inputs of an addition; the hand-written backward must not
    # modify it in place (the weights' transposed layout makes the incoming gradient's transpose contiguous)
    from mmib.objectives.ova_ib import projection_score_from_gram, rowwise_gram

    a = torch.randn(6, 4, requires_grad=True)
    t = [torch.randn(5, 4) for _ in range(2)]
    leaf = torch.zeros(6, 5, requires_grad=True)
    other = leaf * 3.0  # made before the score: autograd runs its backward after the score's
    weights = torch.randn(5, 6).T  # (6, 5), transposed strides
    s = projection_score_from_gram([a @ x.T for x in t], rowwise_gram(t), (a * a).sum(-1))
    ((s + other) * weights).sum().backward()
    torch.testing.assert_close(leaf.grad, 3.0 * weights.contiguous())


def test_two_modality_path_equals_the_general_projection_algebra():
    """M = 2 takes the |cos| path; its values and gradients equal the general Cholesky algebra's (float64), zero
    anchors and zero tuples included."""
    from mmib.objectives.ova_ib import one_vs_rest_inputs, projection_scores_from_gram
    from mmib.objectives.projection.scores import _ProjectionScores

    g = torch.Generator().manual_seed(0)
    z0 = torch.randn(8, 5, generator=g, dtype=torch.float64)
    z1 = torch.randn(8, 5, generator=g, dtype=torch.float64)
    z0[2] = 0.0
    z1[4] = 0.0
    for ridge in (1e-8, 0.3):
        a = [z0.clone().requires_grad_(), z1.clone().requires_grad_()]
        b = [z0.clone().requires_grad_(), z1.clone().requires_grad_()]
        cross, grams, sq = one_vs_rest_inputs(a, a, [0, 1])
        fast = torch.stack(projection_scores_from_gram(cross, grams, sq, ridge))
        cross, grams, sq = one_vs_rest_inputs(b, b, [0, 1])
        slow = torch.stack(_ProjectionScores.apply(grams, sq, ridge, "eager", *[c for per in cross for c in per]))
        torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-12)
        w = torch.randn(fast.shape, generator=g, dtype=torch.float64)
        (fast * w).sum().backward()
        (slow * w).sum().backward()
        for x, y in zip(a, b):
            torch.testing.assert_close(x.grad, y.grad, rtol=1e-8, atol=1e-10)
