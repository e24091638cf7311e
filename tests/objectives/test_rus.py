"""The R/U/S objective (spec C.7): every term against an independent float64 loop or a closed form."""

import math

import pytest
import torch

from mmib.objectives.rus import GradientReversal, RUSLoss, neg_sim_loss, orthogonality_loss, row_cosine


def _cos64(a, b):
    a, b = [float(v) for v in a], [float(v) for v in b]
    na, nb = math.sqrt(sum(v * v for v in a)), math.sqrt(sum(v * v for v in b))
    return sum(x * y for x, y in zip(a, b)) / (na * nb)


def _info_nce64(za, zb, t):
    """Symmetric InfoNCE by loops: mean of a→b and b→a row-wise cross-entropies with the diagonal as positives."""
    n = len(za)
    sim = [[_cos64(za[i], zb[j]) / t for j in range(n)] for i in range(n)]

    def ce(rows):
        tot = 0.0
        for i in range(n):
            m = max(rows[i])
            lse = m + math.log(sum(math.exp(v - m) for v in rows[i]))
            tot += lse - rows[i][i]
        return tot / n

    return 0.5 * (ce(sim) + ce([list(c) for c in zip(*sim)]))


@pytest.mark.parametrize("form", ["abs", "signed"])
@pytest.mark.parametrize("eps", [1e-3, 0.1])
def test_neg_sim_matches_float64_reference(form, eps):
    z, h = torch.randn(7, 5), torch.randn(7, 5)
    ref = 0.0
    for i in range(7):
        s = _cos64(z[i], h[i])
        s = abs(s) if form == "abs" else s
        ref += -math.log(1 - (1 - eps) * s)
    assert float(neg_sim_loss(z, h, form, eps)) == pytest.approx(ref / 7, rel=1e-5, abs=1e-6)


def test_neg_sim_closed_forms():
    e = torch.eye(4)
    # orthogonal rows: zero loss; identical rows: -log(eps) (finite, the design's pole at sim = 1 removed)
    assert float(neg_sim_loss(e, e.roll(1, 0))) == pytest.approx(0.0, abs=1e-7)
    assert float(neg_sim_loss(e, e, eps=1e-3)) == pytest.approx(-math.log(1e-3), rel=1e-4)
    # anti-aligned: the literal (signed) form rewards it (log 2 - ...), the abs form penalizes it like alignment
    assert float(neg_sim_loss(e, -e, "signed", 1e-3)) == pytest.approx(-math.log(2 - 1e-3), rel=1e-5)
    assert float(neg_sim_loss(e, -e, "abs", 1e-3)) == pytest.approx(-math.log(1e-3), rel=1e-4)
    # zero rows give cos 0, not NaN
    assert float(neg_sim_loss(torch.zeros(3, 4), torch.randn(3, 4))) == 0.0
    g = torch.zeros(3, 4, requires_grad=True)
    neg_sim_loss(g, torch.randn(3, 4)).backward()
    assert torch.isfinite(g.grad).all()


def test_neg_sim_bad_arguments():
    with pytest.raises(ValueError, match="form"):
        neg_sim_loss(torch.randn(2, 3), torch.randn(2, 3), form="square")
    with pytest.raises(ValueError, match="eps"):
        neg_sim_loss(torch.randn(2, 3), torch.randn(2, 3), eps=0.0)
    with pytest.raises(ValueError, match="shapes differ"):
        neg_sim_loss(torch.randn(2, 3), torch.randn(2, 4))
    with pytest.raises(ValueError, match="2-D"):
        row_cosine(torch.randn(3), torch.randn(3))


def test_orthogonality_matches_float64_reference_and_excludes_pairs():
    comps = {k: torch.randn(6, 4) for k in ("R_a", "R_b", "U_a", "U_b", "S")}
    loss, pairs = orthogonality_loss(comps, exclude=[("R_b", "R_a")])
    keys = list(comps)
    ref_pairs = {}
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            if {a, b} == {"R_a", "R_b"}:
                continue
            ref_pairs[f"{a}__{b}"] = sum(abs(_cos64(comps[a][n], comps[b][n])) for n in range(6)) / 6
    assert set(pairs) == set(ref_pairs) and len(pairs) == 9
    for k, v in ref_pairs.items():
        assert float(pairs[k]) == pytest.approx(v, rel=1e-5)
    assert float(loss) == pytest.approx(sum(ref_pairs.values()) / 9, rel=1e-5)


def test_orthogonality_closed_form_and_errors():
    e = torch.eye(3)
    loss, _ = orthogonality_loss({"a": e, "b": e.roll(1, 1)})
    assert float(loss) == pytest.approx(0.0, abs=1e-7)
    loss, _ = orthogonality_loss({"a": e, "b": -2 * e})  # |cos| = 1 for anti-parallel rows too
    assert float(loss) == pytest.approx(1.0, rel=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        orthogonality_loss({"a": e})
    with pytest.raises(ValueError, match="shape"):
        orthogonality_loss({"a": e, "b": torch.randn(3, 4)})
    with pytest.raises(ValueError, match="unknown component"):
        orthogonality_loss({"a": e, "b": e}, exclude=[("a", "c")])
    with pytest.raises(ValueError, match="every pair"):
        orthogonality_loss({"a": e, "b": e}, exclude=[("a", "b")])


def test_gradient_reversal():
    x = torch.randn(4, 3, requires_grad=True)
    y = GradientReversal(0.5)(x)
    torch.testing.assert_close(y, x)
    w = torch.randn(4, 3)
    (y * w).sum().backward()
    torch.testing.assert_close(x.grad, -0.5 * w)
    with pytest.raises(ValueError, match="coeff"):
        GradientReversal(-1.0)


@pytest.mark.parametrize("temps", [(0.1, 0.1), (0.5, 0.07)])
def test_rus_loss_matches_reference(temps):
    n, k = 6, 4
    z = {c: torch.randn(n, k, dtype=torch.float64) for c in ("R_a", "R_b", "U_a", "U_b", "S")}
    s2 = torch.randn(n, k, dtype=torch.float64)
    pred, target = torch.randn(n, 3, dtype=torch.float64), torch.randn(n, 3, dtype=torch.float64)
    cross = torch.tensor(0.7, dtype=torch.float64)
    lam = dict(lambda_r=0.5, lambda_u=2.0, lambda_s=1.5, lambda_orth=3.0, lambda_cross=0.25)
    loss = RUSLoss(**lam, temperature_r=temps[0], temperature_s=temps[1], orth_exclude=[("R_a", "R_b")])
    out = loss({"a": z["R_a"], "b": z["R_b"]}, (z["S"], s2), z, {"a": (pred, target)}, {"a": cross})
    l_r = _info_nce64(z["R_a"], z["R_b"], temps[0])
    l_s = _info_nce64(z["S"], s2, temps[1])
    mse = sum(float(v) ** 2 for v in (pred - target).flatten()) / (n * 3)
    keys = list(z)
    pairs = [(a, b) for i, a in enumerate(keys) for b in keys[i + 1:] if {a, b} != {"R_a", "R_b"}]
    l_orth = sum(sum(abs(_cos64(z[a][r], z[b][r])) for r in range(n)) / n for a, b in pairs) / len(pairs)
    l_u = mse + 0.25 * 0.7
    total = 0.5 * l_r + 2.0 * l_u + 1.5 * l_s + 3.0 * l_orth
    assert float(out.terms["L_R"]) == pytest.approx(l_r, rel=1e-6)
    assert float(out.terms["L_S"]) == pytest.approx(l_s, rel=1e-6)
    assert float(out.terms["L_U_recon_a"]) == pytest.approx(mse, rel=1e-6)
    assert float(out.terms["L_U"]) == pytest.approx(l_u, rel=1e-6)
    assert float(out.terms["L_orth"]) == pytest.approx(l_orth, rel=1e-6)
    assert float(out.loss) == pytest.approx(total, rel=1e-6)


def test_rus_loss_reconstruction_target_gets_no_gradient():
    pred = torch.randn(4, 2, requires_grad=True)
    target = torch.randn(4, 2, requires_grad=True)
    z = {c: torch.randn(4, 3) for c in ("a", "b")}
    RUSLoss()({"a": z["a"], "b": z["b"]}, (z["a"], z["b"]), z, {"a": (pred, target)}, {}).loss.backward()
    assert pred.grad is not None and target.grad is None


def test_rus_loss_validates():
    for bad in (dict(lambda_r=-1.0), dict(lambda_orth=float("nan")), dict(lambda_cross=-0.1)):
        with pytest.raises(ValueError, match="must be a finite number >= 0"):
            RUSLoss(**bad)
    with pytest.raises(ValueError, match="temperature"):
        RUSLoss(temperature_r=0.0)
    loss = RUSLoss()
    z = {c: torch.randn(4, 3) for c in ("a", "b", "c")}
    with pytest.raises(ValueError, match="exactly 2"):
        loss(z, (z["a"], z["b"]), z, {}, {})
    with pytest.raises(ValueError, match="shapes differ"):
        loss({"a": z["a"], "b": torch.randn(4, 5)}, (z["a"], z["b"]), z, {}, {})
    with pytest.raises(ValueError, match="2 fused views"):
        loss({"a": z["a"], "b": z["b"]}, (z["a"],), z, {}, {})
    with pytest.raises(ValueError, match="prediction"):
        loss({"a": z["a"], "b": z["b"]}, (z["a"], z["b"]), z, {"a": (torch.zeros(4, 2), torch.zeros(4, 3))}, {})
    with pytest.raises(ValueError, match="scalar"):
        loss({"a": z["a"], "b": z["b"]}, (z["a"], z["b"]), z, {}, {"a": torch.zeros(2)})
