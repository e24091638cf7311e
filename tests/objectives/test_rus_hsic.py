"""The information-based terms of ``rus`` (issue 20): HSIC and the HSIC penalty against an independent float64 loop
implementation, closed forms, and the synergy term L_syn of RUSLoss."""

import itertools
import math

import pytest
import torch

from mmib.objectives.rus import RUSLoss, hsic, hsic_penalty


def _hsic64(x, y, normalized=True, sigma=None):
    """HSIC by loops in float64: Gaussian Gram matrices (median heuristic over i != j), H K H, tr(Kc Lc)/(n-1)^2."""
    x, y = [[float(v) for v in r] for r in x], [[float(v) for v in r] for r in y]
    n = len(x)

    def gram(a):
        d2 = [[sum((a[i][k] - a[j][k]) ** 2 for k in range(len(a[0]))) for j in range(n)] for i in range(n)]
        if sigma is None:
            off = sorted(d2[i][j] for i in range(n) for j in range(n) if i != j)
            m = len(off)
            s2 = off[(m - 1) // 2]  # torch.median: the lower of the two middle values
        else:
            s2 = sigma ** 2
        return [[math.exp(-d2[i][j] / (2 * s2)) for j in range(n)] for i in range(n)]

    def center(k):
        row = [sum(k[i]) / n for i in range(n)]
        col = [sum(k[i][j] for i in range(n)) / n for j in range(n)]
        tot = sum(row) / n
        return [[k[i][j] - row[i] - col[j] + tot for j in range(n)] for i in range(n)]

    kc, lc = center(gram(x)), center(gram(y))
    dot = lambda p, q: sum(p[i][j] * q[i][j] for i in range(n) for j in range(n))  # noqa: E731
    h = dot(kc, lc) / (n - 1) ** 2
    return h / math.sqrt(dot(kc, kc) * dot(lc, lc)) * (n - 1) ** 2 if normalized else h


@pytest.mark.parametrize("normalized", [True, False])
@pytest.mark.parametrize("sigma", [None, 1.5])
def test_hsic_matches_float64_loop(normalized, sigma):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(9, 3, generator=g), torch.randn(9, 2, generator=g)
    y = y + 0.5 * x[:, :2]
    assert float(hsic(x, y, normalized, sigma)) == pytest.approx(_hsic64(x, y, normalized, sigma), rel=1e-4, abs=1e-7)


def test_hsic_closed_forms_and_dependence():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200, 2, generator=g)
    assert float(hsic(x, x)) == pytest.approx(1.0, abs=1e-5)  # normalized HSIC of a variable with itself
    assert float(hsic(x, 3.0 * x)) == pytest.approx(1.0, abs=1e-4)  # median heuristic: scale-free
    indep = float(hsic(x, torch.randn(200, 2, generator=g)))
    # a dependence that is invisible to correlation (y = x^2): HSIC sees it, the correlation does not
    y = x[:, :1] ** 2
    assert abs(float(torch.corrcoef(torch.stack([x[:, 0], y[:, 0]]))[0, 1])) < 0.2
    assert float(hsic(x[:, :1], y)) > 5 * indep
    assert indep < 0.05


def test_hsic_is_differentiable_and_validates():
    x = torch.randn(8, 3, requires_grad=True)
    hsic(x, torch.randn(8, 2)).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="rows"):
        hsic(torch.randn(5, 2), torch.randn(6, 2))
    with pytest.raises(ValueError, match="at least 4"):
        hsic(torch.randn(3, 2), torch.randn(3, 2))
    with pytest.raises(ValueError, match="2-D"):
        hsic(torch.randn(5), torch.randn(5, 2))


def test_hsic_penalty_matches_pairs_and_excludes():
    comps = {k: torch.randn(10, 4) for k in ("R_a", "R_b", "U_a", "U_b", "S")}
    loss, pairs = hsic_penalty(comps, exclude=[("R_b", "R_a")])
    ref = {}
    for a, b in itertools.combinations(comps, 2):
        if {a, b} == {"R_a", "R_b"}:
            continue
        na = comps[a] / comps[a].norm(dim=1, keepdim=True)
        nb = comps[b] / comps[b].norm(dim=1, keepdim=True)
        ref[f"{a}__{b}"] = _hsic64(na, nb)
    assert set(pairs) == set(ref) and len(pairs) == 9
    for k in ref:
        assert float(pairs[k]) == pytest.approx(ref[k], rel=1e-4, abs=1e-7)
    assert float(loss) == pytest.approx(sum(ref.values()) / 9, rel=1e-4)
    with pytest.raises(ValueError, match="unknown component"):
        hsic_penalty(comps, exclude=[("R_a", "Q")])


def test_rus_loss_hsic_and_synergy_terms():
    g = torch.Generator().manual_seed(2)
    z = {k: torch.randn(12, 4, generator=g) for k in ("R_a", "R_b", "U_a", "U_b", "S")}
    z["S"].requires_grad_(True)
    h = {"a": torch.randn(12, 6, generator=g, requires_grad=True), "b": torch.randn(12, 6, generator=g)}
    args = ({"a": z["R_a"], "b": z["R_b"]}, (z["S"], z["S"] + 0.1), z, {}, {})
    base = RUSLoss(orth_exclude=[("R_a", "R_b")])
    full = RUSLoss(orth_exclude=[("R_a", "R_b")], lambda_hsic=0.5, lambda_syn=2.0)
    o0, o1 = base(*args), full(*args, s_unimodal=h)
    sn = z["S"] / z["S"].norm(dim=1, keepdim=True)
    syn = _hsic64(sn, h["a"].detach()) + _hsic64(sn, h["b"])
    assert float(o1.terms["L_syn"]) == pytest.approx(syn, rel=1e-4)
    assert float(o1.loss - o0.loss) == pytest.approx(0.5 * float(o1.terms["L_hsic"]) + 2.0 * syn, rel=1e-4)
    assert "L_hsic" not in o0.terms and "L_syn" not in o0.terms  # lambda_hsic 0 and no s_unimodal: off
    o1.loss.backward()
    assert h["a"].grad is None  # L_syn moves Z_S only, not the unimodal representations
    assert z["S"].grad is not None and torch.isfinite(z["S"].grad).all()
    with pytest.raises(ValueError, match="lambda_hsic"):
        RUSLoss(lambda_hsic=-1.0)
