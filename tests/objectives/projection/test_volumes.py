"""mmib.objectives.projection.volumes: the GRAM volume (the square root of the Gram determinant of an anchor
and a candidate tuple) against closed forms and a float64 determinant reference, and its hand-written backward
against finite differences."""

import math

import objectives_reference as ref
import pytest
import torch

from mmib.objectives import gram_volume


@pytest.mark.parametrize("k", [2, 3, 5])
def test_volume_closed_forms(k):
    eye = torch.eye(6, dtype=torch.float64)
    # orthonormal vectors span a unit cube
    v = gram_volume(eye[:1], [eye[i : i + 1] for i in range(1, k)])
    assert math.isclose(float(v), 1.0, rel_tol=1e-8)
    # a repeated vector flattens it to zero
    v0 = gram_volume(eye[:1], [eye[:1]] + [eye[i : i + 1] for i in range(1, k - 1)])
    assert float(v0) < 1e-4
    # two vectors at angle θ: area sin θ
    theta = 0.3
    a = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    b = torch.tensor([[math.cos(theta), math.sin(theta)]], dtype=torch.float64)
    assert math.isclose(float(gram_volume(a, [b])), math.sin(theta), rel_tol=1e-8)


def test_volume_matrix_matches_determinant():
    a = torch.randn(4, 7, dtype=torch.float64)
    t = [torch.randn(5, 7, dtype=torch.float64) for _ in range(3)]
    v = gram_volume(a, t)
    for i in range(4):
        for j in range(5):
            assert math.isclose(float(v[i, j]), float(ref.volume([a[i]] + [x[j] for x in t])), rel_tol=1e-7)


def test_volume_gradcheck_unnormalized_and_one_call_for_all_anchors():
    # the hand-written backward (∂det K/∂K = det K · K⁻¹ and the Schur-complement terms) against finite differences,
    # on unnormalized inputs; and the all-anchors call equals one call per anchor
    from mmib.objectives.gram import volume_from_gram, volumes_from_gram
    from mmib.objectives.ova_ib import rowwise_gram

    a = torch.randn(4, 5, dtype=torch.float64, requires_grad=True)
    t = [torch.randn(3, 5, dtype=torch.float64, requires_grad=True) for _ in range(2)]

    def f(a, t0, t1):
        return volume_from_gram([a @ t0.T, a @ t1.T], rowwise_gram([t0, t1]), (a * a).sum(-1), ridge=1e-3)

    assert torch.autograd.gradcheck(f, (a, *t))
    zs = [torch.randn(5, 4, dtype=torch.float64) for _ in range(3)]
    full = rowwise_gram(zs)
    per = []
    for m in range(3):
        o = [b for b in range(3) if b != m]
        per.append(volume_from_gram([zs[m] @ zs[b].T for b in o], full[:, o][:, :, o], (zs[m] ** 2).sum(-1)))
    grams = torch.stack([full[:, o][:, :, o] for o in ([1, 2], [0, 2], [0, 1])])
    cross = [[zs[m] @ zs[b].T for b in range(3) if b != m] for m in range(3)]
    both = volumes_from_gram(cross, grams, torch.stack([(z**2).sum(-1) for z in zs]))
    for x, y in zip(per, both):
        torch.testing.assert_close(x, y)
