import math

import objectives_reference as ref
import pytest
import torch
from objectives_reference import assert_matches

from mmib.objectives import TriangleLoss, triangle_area


@pytest.mark.parametrize("n,d", [(3, 4), (5, 6), (4, 2)])
@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_matches_float64_loop_reference(n, d, smoothing):
    zs = [torch.randn(n, d, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    out = TriangleLoss(temperature=0.5, label_smoothing=smoothing)({"t": zs[0], "v": zs[1], "a": zs[2]})
    assert_matches(out.loss, ref.triangle_loss(zs, 0.5, smoothing), zs)


def test_decoupled_matches_reference():
    zs = [torch.randn(4, 3, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    out = TriangleLoss(temperature=0.5, label_smoothing=0.0, positive_in_denominator=False)(zs)
    assert_matches(out.loss, ref.triangle_loss(zs, 0.5, 0.0, pid=False), zs)


def test_area_closed_forms():
    e = torch.eye(3, dtype=torch.float64)
    # right isosceles triangle with legs sqrt(2): (|u|^2 |w|^2 - (u.w)^2) / 2 = (2*2 - 1) / 2
    assert math.isclose(float(triangle_area(e[:1], [e[1:2], e[2:3]])), 1.5, rel_tol=1e-12)
    # degenerate triangle (two equal vertices) has zero area
    assert abs(float(triangle_area(e[:1], [e[:1], e[2:3]]))) < 1e-12
    with pytest.raises(ValueError, match="exactly 2"):
        triangle_area(e[:1], [e[1:2]])


def test_exactly_three_modalities():
    for m in (2, 4):
        with pytest.raises(ValueError, match="exactly 3 modalities"):
            TriangleLoss()({f"m{i}": torch.randn(3, 4) for i in range(m)})
    with pytest.raises(ValueError, match="exactly 3 modalities"):
        TriangleLoss().score({"a": torch.randn(2, 4)}, torch.randn(3, 4))


def test_zero_embeddings_no_nan_gather_noop_and_score():
    zs = {k: torch.zeros(4, 3, requires_grad=True) for k in "tva"}
    out = TriangleLoss()(zs)
    out.loss.backward()
    assert torch.isfinite(out.loss) and all(torch.isfinite(t.grad).all() for t in zs.values())
    x = {k: torch.randn(5, 4) for k in "tva"}
    torch.testing.assert_close(TriangleLoss(gather_distributed=True)(x).loss, TriangleLoss()(x).loss)
    q = {"v": torch.randn(3, 4, dtype=torch.float64), "a": torch.randn(3, 4, dtype=torch.float64)}
    c = torch.randn(5, 4, dtype=torch.float64)
    s = TriangleLoss().score(q, c)
    assert s.shape == (3, 5)
    u = ref.unit
    for i in range(3):
        for j in range(5):
            assert math.isclose(
                float(s[i, j]), -float(ref.area(u(c[j]), u(q["v"][i]), u(q["a"][i]))), rel_tol=1e-9
            )
