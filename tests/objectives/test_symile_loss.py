import math

import objectives_reference as ref
import pytest
import torch
from objectives_reference import assert_matches

from mmib.objectives import SymileLoss, mip


def _named(zs):
    return {f"m{i}": z for i, z in enumerate(zs)}


@pytest.mark.parametrize("n,m,d", [(3, 2, 4), (4, 3, 5), (3, 4, 3)])
@pytest.mark.parametrize("pid", [True, False])
def test_n_squared_matches_float64_loop_reference(n, m, d, pid):
    zs = [torch.randn(n, d, dtype=torch.float64, requires_grad=True) for _ in range(m)]
    out = SymileLoss(temperature=0.1, negatives="n_squared", positive_in_denominator=pid)(_named(zs))
    assert_matches(out.loss, ref.symile_n_squared_loss(zs, 0.1, pid, factor=d ** (m / 2 - 1)), zs)


@pytest.mark.parametrize("n,m,d", [(4, 2, 3), (5, 3, 4), (4, 5, 3)])
@pytest.mark.parametrize("pid", [True, False])
def test_n_matches_float64_loop_reference_with_the_same_seed(n, m, d, pid):
    zs = [torch.randn(n, d, dtype=torch.float64, requires_grad=True) for _ in range(m)]
    out = SymileLoss(temperature=0.1, negatives="n", seed=7, positive_in_denominator=pid)(_named(zs))
    assert_matches(out.loss, ref.symile_n_loss(zs, 0.1, seed=7, pid=pid, factor=d ** (m / 2 - 1)), zs)


def test_seeded_generator_is_caller_controlled():
    zs = _named([torch.randn(16, 8) for _ in range(3)])
    a, b = SymileLoss(seed=3), SymileLoss(seed=3)
    torch.testing.assert_close(a(zs).loss, b(zs).loss)  # same seed, same permutations
    first = a(zs).loss
    torch.manual_seed(123)  # the global RNG plays no part
    a.reseed(3)
    torch.testing.assert_close(a(zs).loss, SymileLoss(seed=3)(zs).loss)
    assert not torch.allclose(first, SymileLoss(seed=4)(zs).loss)


@pytest.mark.parametrize("n", [3, 6])
@pytest.mark.parametrize("m", [2, 3, 4])
def test_identical_embeddings_closed_forms(n, m):
    z = torch.randn(1, 5).expand(n, 5)
    zs = _named([z] * m)
    n2 = SymileLoss(negatives="n_squared", learn_temperature=False)(zs).loss
    assert math.isclose(float(n2), (m - 1) * math.log(n), rel_tol=1e-5)
    n1 = SymileLoss(negatives="n", learn_temperature=False)(zs).loss
    assert math.isclose(float(n1), math.log(n), rel_tol=1e-5)


def test_zero_embeddings_no_nan_and_normalize_flag():
    zs = {k: torch.zeros(4, 3, requires_grad=True) for k in "abc"}
    for neg in ("n", "n_squared"):
        out = SymileLoss(negatives=neg)(zs)
        out.loss.backward()
        assert torch.isfinite(out.loss) and all(torch.isfinite(t.grad).all() for t in zs.values())
    x = {k: torch.randn(4, 3) for k in "abc"}
    raw = SymileLoss(normalize=False, negatives="n_squared", temperature=1.0, learn_temperature=False,
                     mip_scale="none")
    with pytest.raises(ValueError, match="mip_scale"):
        SymileLoss(normalize=False)
    with pytest.raises(ValueError, match="mip_scale"):
        SymileLoss(mip_scale="sqrt")
    # without normalization the positive logit is the raw MIP
    assert float(mip(list(x.values()))[0]) != pytest.approx(0)
    assert torch.isfinite(raw(x).loss)


def test_gather_noop_terms_and_bad_args():
    zs = _named([torch.randn(5, 4) for _ in range(3)])
    torch.testing.assert_close(
        SymileLoss(gather_distributed=True, seed=1)(zs).loss,
        SymileLoss(gather_distributed=False, seed=1)(zs).loss,
    )
    out = SymileLoss(learn_temperature=True)(zs)
    assert {"symile_m0", "symile_m1", "symile_m2", "temperature"} == set(out.terms)
    out.loss.backward()
    with pytest.raises(ValueError, match="negatives"):
        SymileLoss(negatives="all")
    with pytest.raises(ValueError, match="temperature"):
        SymileLoss(temperature=-0.1)
    with pytest.raises(ValueError, match="seed"):
        SymileLoss(seed=1.5)
    with pytest.raises(ValueError, match="max_candidates"):
        SymileLoss(negatives="n_squared", max_candidates=10)(zs)


def test_score_is_mip_with_product_of_queries():
    q = {"a": torch.randn(3, 4, dtype=torch.float64), "b": torch.randn(3, 4, dtype=torch.float64)}
    c = torch.randn(5, 4, dtype=torch.float64)
    s = SymileLoss(mip_scale="none").score(q, c)
    assert s.shape == (3, 5)
    torch.testing.assert_close(SymileLoss().score(q, c), s * 4 ** 0.5)  # d^(M/2 - 1), d = 4, M = 3
    u = {k: v / v.norm(dim=1, keepdim=True) for k, v in q.items()}
    cu = c / c.norm(dim=1, keepdim=True)
    for i in range(3):
        for j in range(5):
            expected = sum(float(u["a"][i, k] * u["b"][i, k] * cu[j, k]) for k in range(4))
            assert math.isclose(float(s[i, j]), expected, rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize("d,m", [(16, 3), (256, 3), (64, 4), (512, 6)])
def test_dense_scale_makes_aligned_dense_tuples_score_one_for_every_d_and_m(d, m):
    # an aligned dense tuple: every coordinate ±1/sqrt(d), signs chosen so that each product is positive
    g = torch.Generator().manual_seed(d + m)
    signs = [torch.randint(0, 2, (d,), generator=g).double() * 2 - 1 for _ in range(m - 1)]
    last = torch.stack(signs).prod(0)
    zs = [s[None] for s in signs] + [last[None]]
    loss = SymileLoss()
    factor = loss.mip_factor(d, m)
    unit_zs = [z / z.norm() for z in zs]
    assert float(factor * mip(unit_zs)) == pytest.approx(1.0, rel=1e-9)
    # random unit tuples: std of the scaled MIP ~ 1/sqrt(d), like a cosine, whatever M
    r = [torch.nn.functional.normalize(torch.randn(4000, d, generator=g, dtype=torch.float64), dim=1)
         for _ in range(m)]
    assert float((factor * mip(r)).std()) * d**0.5 == pytest.approx(1.0, rel=0.1)
