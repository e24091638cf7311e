import math

import objectives_reference as ref
import pytest
import torch
from objectives_reference import assert_matches

from mmib.objectives import OVAIBLoss
from mmib.objectives.ova_ib import minimality_term


def _named(zs):
    return {f"m{i}": z for i, z in enumerate(zs)}


@pytest.mark.parametrize("n,m,d", [(3, 2, 4), (4, 3, 5), (3, 5, 6), (4, 4, 2)])
@pytest.mark.parametrize("pid", [True, False])
def test_matches_naive_explicit_projection_reference(n, m, d, pid):
    # (4, 4, 2): M−1 = 3 > d = 2, the tuple Gram matrix is singular and only the ridge makes it invertible
    zs = [torch.randn(n, d, dtype=torch.float64, requires_grad=True) for _ in range(m)]
    out = OVAIBLoss(temperature=0.1, beta=0.5, ridge=1e-6, positive_in_denominator=pid)(_named(zs))
    total, suff, mini = ref.ova_ib_loss(zs, 0.1, 0.5, ridge=1e-6, pid=pid)
    assert_matches(out.loss, total, zs, rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(out.terms["sufficiency"], suff.detach())
    torch.testing.assert_close(out.terms["minimality"], mini.detach())


def test_paper_defaults_match_reference_in_float32():
    zs = [torch.randn(6, 16, requires_grad=True) for _ in range(4)]
    out = OVAIBLoss()(_named(zs))  # τ = 0.01, β = 1, λ = 1e-8
    z64 = [z.detach().double().requires_grad_(True) for z in zs]
    total, _, _ = ref.ova_ib_loss(z64, 0.01, 1.0, ridge=1e-8)
    torch.testing.assert_close(out.loss.double(), total, rtol=1e-4, atol=1e-4)
    g = torch.autograd.grad(out.loss, zs)
    g_ref = torch.autograd.grad(total, z64)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a.double(), b, rtol=1e-3, atol=1e-3)


def test_zero_and_collinear_embeddings_no_nan():
    zs = {k: torch.zeros(4, 6, requires_grad=True) for k in "abcd"}
    out = OVAIBLoss()(zs)
    out.loss.backward()
    assert torch.isfinite(out.loss) and all(torch.isfinite(t.grad).all() for t in zs.values())
    z = torch.randn(4, 6, requires_grad=True)
    out = OVAIBLoss()({"a": z, "b": z, "c": z})  # every tuple is two copies of one vector
    out.loss.backward()
    assert torch.isfinite(out.loss) and torch.isfinite(z.grad).all()
    assert float(out.terms["minimality"]) == pytest.approx(0.0, abs=1e-10)


def test_minimality_term_reference_and_beta():
    zs = [torch.randn(5, 3, dtype=torch.float64) for _ in range(4)]
    total, per = minimality_term(zs)
    for m, value in enumerate(per):
        others = sum(zs[i] for i in range(4) if i != m) / 3
        torch.testing.assert_close(value, ((zs[m] - others) ** 2).sum(1).mean())
    torch.testing.assert_close(total, sum(per) / 4)
    x = _named([torch.randn(5, 3) for _ in range(3)])
    o0, o2 = OVAIBLoss(beta=0.0)(x), OVAIBLoss(beta=2.0)(x)
    torch.testing.assert_close(o2.loss, o0.loss + 2.0 * o2.terms["minimality"])


def test_positive_in_denominator_flag():
    x = _named([torch.randn(6, 4) for _ in range(3)])
    assert OVAIBLoss(positive_in_denominator=False)(x).loss < OVAIBLoss()(x).loss


def test_mlp_projector_matches_reference_and_scores():
    torch.manual_seed(1)
    loss_fn = OVAIBLoss(temperature=0.2, beta=0.0, projector="mlp", n_modalities=3, embed_dim=4).double()
    zs = [torch.randn(5, 4, dtype=torch.float64, requires_grad=True) for _ in range(3)]
    out = loss_fn(_named(zs))
    us = [[ref.unit(z[i]) for i in range(5)] for z in zs]
    total = 0.0
    for a in range(3):
        others = [b for b in range(3) if b != a]
        mlp = loss_fn.projectors[a]
        t = [ref.unit(mlp([torch.stack([us[b][c] for c in range(5)]) for b in others])[c]) for c in range(5)]
        total = total + ref.infonce(lambda r, c, a=a, t=t: torch.dot(us[a][r], t[c]) / 0.2, 5, 5)
    assert_matches(out.loss, total / 3, zs)
    named = OVAIBLoss(projector="mlp", embed_dim=4, modality_names=["x", "y", "z"])
    q = {"z": torch.randn(2, 4), "x": torch.randn(2, 4)}
    assert named.score(q, torch.randn(7, 4)).shape == (2, 7)
    with pytest.raises(ValueError, match="candidate_modality"):
        loss_fn.score({"a": torch.randn(2, 4), "b": torch.randn(2, 4)}, torch.randn(3, 4))
    assert loss_fn.score(
        {"a": torch.randn(2, 4).double(), "b": torch.randn(2, 4).double()},
        torch.randn(3, 4).double(),
        candidate_modality=2,
    ).shape == (2, 3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"temperature": 0.0}, "temperature"),
        ({"beta": -0.1}, "beta"),
        ({"ridge": 0.0}, "ridge"),
        ({"projector": "linear"}, "projector"),
        ({"projector": "mlp", "embed_dim": 8}, "n_modalities"),
        ({"projector": "mlp", "n_modalities": 3}, "embed_dim"),
        ({"modality_names": ["a", "a"]}, "modality_names"),
        ({"modality_names": ["a", "b"], "n_modalities": 3}, "disagrees"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        OVAIBLoss(**kwargs)


def test_mlp_projector_checks_inputs():
    loss_fn = OVAIBLoss(projector="mlp", n_modalities=3, embed_dim=4)
    with pytest.raises(ValueError, match="3 modalities"):
        loss_fn({"a": torch.randn(2, 4), "b": torch.randn(2, 4)})
    with pytest.raises(ValueError, match="dimension 5"):
        loss_fn({k: torch.randn(2, 5) for k in "abc"})


def test_gather_noop_terms_and_score_shape():
    x = _named([torch.randn(5, 4) for _ in range(3)])
    torch.testing.assert_close(OVAIBLoss(gather_distributed=True)(x).loss, OVAIBLoss()(x).loss)
    out = OVAIBLoss(learn_temperature=True)(x)
    assert {"infonce_m0", "sufficiency", "minimality", "temperature"} <= set(out.terms)
    q = {"a": torch.randn(3, 4, dtype=torch.float64), "b": torch.randn(3, 4, dtype=torch.float64)}
    c = torch.randn(6, 4, dtype=torch.float64)
    s = OVAIBLoss().score(q, c)
    assert s.shape == (3, 6)
    u = ref.unit
    for i in range(3):
        for j in range(6):
            expected = float(ref.projection_cos(u(c[j]), [u(q["a"][i]), u(q["b"][i])], 1e-8))
            assert math.isclose(float(s[i, j]), expected, rel_tol=1e-8)


@pytest.mark.parametrize("block", [5, 10_000])
def test_hand_written_backward_over_blocks_matches_reference(block, monkeypatch):
    # the score's backward is written by hand and works through blocks of candidate rows: 7 candidates in blocks of
    # one row (5 // d) or all at once must both match the float64 loop reference, values and gradients
    import mmib.objectives.projection.layout as layout

    monkeypatch.setattr(layout, "BLOCK_ELEMENTS", block)
    zs = [torch.randn(7, 5, dtype=torch.float64, requires_grad=True) for _ in range(4)]
    out = OVAIBLoss(temperature=0.2, beta=0.3, ridge=1e-3)(_named(zs))
    total, _, _ = ref.ova_ib_loss(zs, 0.2, 0.3, ridge=1e-3)
    assert_matches(out.loss, total, zs, rtol=1e-7, atol=1e-9)


def test_cache_blocks_on_the_cpu_only():
    from mmib.objectives.projection.layout import BLOCK_ELEMENTS, row_blocks

    rows = BLOCK_ELEMENTS // 1000
    cpu = row_blocks(3 * rows, 1000, torch.device("cpu"))
    assert [b.stop - b.start for b in cpu] == [rows, rows, rows]
    assert row_blocks(3 * rows, 1000, torch.device("cuda")) == [slice(0, 3 * rows)]


