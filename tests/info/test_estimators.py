"""Critics and estimator modules vs float64 references; neural-estimator claims on small problems (spec D.1)."""

import math

import pytest
import torch

from mmib.errors import UnknownNameError
from mmib.info import (
    CLUBEstimator,
    InfoNCEEstimator,
    MINEEstimator,
    NCECLUBEstimator,
    NWJEstimator,
    build_estimator,
    conditional_gaussians,
    correlated_gaussians,
    estimate_mi,
    gaussian_club_value,
    infonce_lower_bound,
    mine_lower_bound,
    nce_club_upper_bound,
)

SMALL = {"critic": "concat", "critic_kwargs": {"hidden_dim": 64}, "lr": 5e-3, "train_batch_size": 64}  # fast


@pytest.mark.parametrize("q", ["mlp", "linear"])
def test_club_log_q_matches_torch_normal_and_its_loss_is_the_nll(q):
    torch.manual_seed(0)
    est = CLUBEstimator(3, 2, hidden_dim=8, q=q).double()
    if q == "linear":  # a linear mean and one learned log-variance vector, shared by every x
        assert isinstance(est.critic.mu, torch.nn.Linear)
        with torch.no_grad():
            est.critic.logvar.value.copy_(torch.tensor([0.3, -0.7]))
    x, y = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 2, dtype=torch.float64)
    lq, _ = est.log_q(x, y)
    mu, logvar = est.critic.mu(x), est.critic.logvar(x)
    for i in range(5):
        q = torch.distributions.Normal(mu[i], (0.5 * logvar[i]).exp())
        for j in range(5):
            assert lq[i, j].item() == pytest.approx(q.log_prob(y[j]).sum().item(), abs=1e-10)
    assert est.learning_loss(x, y).item() == pytest.approx(-lq.diagonal().mean().item(), abs=1e-12)
    assert est(x, y).item() == pytest.approx((lq.diagonal().mean() - lq.mean()).item(), abs=1e-12)


def test_estimators_return_the_bound_of_their_critic_scores():
    torch.manual_seed(0)
    x, y = torch.randn(8, 3), torch.randn(8, 2)
    for cls, fn in ((InfoNCEEstimator, infonce_lower_bound), (MINEEstimator, mine_lower_bound)):
        est = cls(3, 2, critic="separable")
        s, _ = est.scores(x, y)
        assert est(x, y).item() == pytest.approx(fn(s).item(), abs=1e-6)
    nce = NCECLUBEstimator(3, 2)
    s, _ = nce.scores(x, y)
    v = nce.estimates(x, y)
    assert v["nce_club"].item() == pytest.approx(nce_club_upper_bound(s).item(), abs=1e-6)
    assert v["infonce"].item() == pytest.approx(-nce.learning_loss(x, y).item(), abs=1e-6)
    off = NCECLUBEstimator(3, 2, include_diagonal=False)
    assert off.primary == "nce_club_offdiag"
    out = NWJEstimator(3, 2)(x, y)
    assert out.dim() == 0 and out.requires_grad


def test_conditioning_concatenates_c_and_masks_negatives():
    torch.manual_seed(0)
    x, y = torch.randn(6, 3), torch.randn(6, 2)
    c = torch.tensor([[1.0, 0], [1, 0], [0, 1], [0, 1], [0, 1], [1, 0]])
    est = InfoNCEEstimator(3, 2, c_dim=2, critic="separable", negatives="same_condition")
    s, mask = est.scores(x, y, c)
    assert torch.allclose(s, est.critic(torch.cat([x, c], 1), torch.cat([y, c], 1)))
    assert mask.tolist() == (c[:, None] == c[None]).all(-1).tolist()
    assert est(x, y, c).item() == pytest.approx(infonce_lower_bound(s, mask).item(), abs=1e-6)
    xonly = InfoNCEEstimator(3, 2, c_dim=2, critic="separable", condition_on="x")
    assert xonly.critic.y_dim == 2 and xonly.critic.x_dim == 5


def test_mine_moving_average_correction():
    torch.manual_seed(0)
    x, y = torch.randn(16, 3), torch.randn(16, 3)
    # rate 1: the moving average is the batch value itself, so the corrected gradient is the DV gradient
    est = MINEEstimator(3, 3, critic="separable", ma_rate=1.0)
    g1 = torch.autograd.grad(est.learning_loss(x, y), list(est.parameters()))
    g2 = torch.autograd.grad(-est(x, y), list(est.parameters()))
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, atol=1e-6)
    # rate a: log_ma follows log((1 - a) ma + a * mean_marg e^T), in float64 by hand
    est = MINEEstimator(3, 3, critic="separable", ma_rate=0.1)
    ma = None
    for _ in range(3):
        xb, yb = torch.randn(8, 3), torch.randn(8, 3)
        s, _ = est.scores(xb, yb)
        off = s.detach().double()[~torch.eye(8, dtype=torch.bool)]
        et = off.exp().mean().item()
        ma = et if ma is None else 0.9 * ma + 0.1 * et
        est.learning_loss(xb, yb)
        assert est.log_ma.item() == pytest.approx(math.log(ma), abs=1e-5)


def test_bad_estimator_inputs_raise():
    est = InfoNCEEstimator(3, 2)
    with pytest.raises(ValueError, match=r"x must be a 2-D tensor \(N, 3\)"):
        est(torch.randn(4, 4), torch.randn(4, 2))
    with pytest.raises(ValueError, match="same number of rows"):
        est(torch.randn(4, 3), torch.randn(5, 2))
    with pytest.raises(ValueError, match="c_dim=0"):
        est(torch.randn(4, 3), torch.randn(4, 2), torch.randn(4, 1))
    bad = torch.randn(4, 3)
    bad[1, 1] = float("inf")
    with pytest.raises(ValueError, match="x contains NaN or inf"):
        est(bad, torch.randn(4, 2))
    with pytest.raises(ValueError, match="pass the conditioning tensor c"):
        InfoNCEEstimator(3, 2, c_dim=1)(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="same_condition"):
        InfoNCEEstimator(3, 2, negatives="same_condition")
    with pytest.raises(ValueError, match="negatives"):
        InfoNCEEstimator(3, 2, negatives="all")
    with pytest.raises(UnknownNameError, match="infonce"):
        build_estimator("nope", 3, 2)
    with pytest.raises(UnknownNameError, match="concat"):
        InfoNCEEstimator(3, 2, critic="mlp")
    with pytest.raises(ValueError, match="batch_size"):
        estimate_mi(torch.randn(10, 2), torch.randn(10, 2), batch_size=64)
    with pytest.raises(ValueError, match="steps"):
        estimate_mi(torch.randn(10, 2), torch.randn(10, 2), steps=-1, batch_size=4)


# ------------------------------------------------------------------------------------ claims on small problems


def test_infonce_estimate_approaches_truth_from_below_and_is_seeded():
    x, y = correlated_gaussians(4096, 2, 1.0, seed=0)
    r = estimate_mi(x, y, method="infonce", steps=300, **SMALL)
    assert 0.8 <= r.value <= 1.05  # lower bound, tolerance 0.2 nats after 300 steps
    again = estimate_mi(x, y, method="infonce", steps=20, **SMALL)
    assert again.history == estimate_mi(x, y, method="infonce", steps=20, **SMALL).history


def test_infonce_never_exceeds_log_batch_when_the_truth_is_larger():
    x, y = correlated_gaussians(4096, 5, 10.0, seed=0)
    r = estimate_mi(x, y, method="infonce", steps=200, **SMALL)
    assert max(r.history) <= math.log(64) + 1e-5 and r.value <= math.log(64)  # concat: trained at batch 64 too
    assert r.value > 3.0  # saturating towards log 64 = 4.16


def test_club_and_nce_club_lie_above_the_truth_on_a_small_gaussian():
    # with the exact conditional both converge to gaussian_club_value = d(e^{2I/d} - 1) = 3.44 > I = 1
    x, y = correlated_gaussians(4096, 2, 1.0, seed=0)
    club = estimate_mi(x, y, method="club", steps=300, **SMALL)
    nce_club = estimate_mi(x, y, method="nce_club", steps=300, **SMALL)
    target = gaussian_club_value(2, 1.0)
    assert club.value > 1.0 and abs(club.value - target) < 0.5
    assert 1.0 < nce_club.value < target + 0.3


def test_conditional_infonce_recovers_known_cmi():
    # spec D.1.4 generator, negatives from p(x2|c) (batches share one c): within 0.2 nats of the true CMI
    x1, x2, c = conditional_gaussians(64 * 100, 3, 1.0, seed=0, samples_per_condition=64)
    r = estimate_mi(x1, x2, c, method="infonce", steps=400, **SMALL)
    assert abs(r.value - 1.0) < 0.2
    # in-batch negatives across different c (FactorCL's code) estimate I([X1,C];[X2,C]) instead, near log N
    x1, x2, c = conditional_gaussians(64 * 100, 3, 1.0, seed=0, samples_per_condition=1)
    r = estimate_mi(x1, x2, c, method="infonce", negatives="batch", steps=200, **SMALL)
    assert r.value > 2.5


def test_xor_conditional_mi_d15():
    # b1, b2 bits; xi = ±v_i + noise; Y = b1 xor b2: I(X1;X2) = 0 but I(X1;X2|Y) = ln 2
    g = torch.Generator().manual_seed(0)
    n = 4000
    b = torch.randint(0, 2, (n, 2), generator=g)
    v = torch.randn(2, 2, generator=g)
    x1 = (2 * b[:, :1] - 1) * v[0] + 0.05 * torch.randn(n, 2, generator=g)
    x2 = (2 * b[:, 1:] - 1) * v[1] + 0.05 * torch.randn(n, 2, generator=g)
    y = torch.nn.functional.one_hot(b[:, 0] ^ b[:, 1], 2).float()
    cond = estimate_mi(x1, x2, y, method="infonce", steps=300, **SMALL)
    uncond = estimate_mi(x1, x2, method="infonce", steps=150, **SMALL)
    assert abs(cond.value - math.log(2)) < 0.1
    assert abs(uncond.value) < 0.05


def test_club_log_q_by_matmuls_matches_the_difference_tensor_with_gradients():
    # log_q is computed by two matmuls (no (N, N, d) tensor); against the direct formula, values and gradients, and
    # the O(N d) learning loss against the diagonal of the full matrix
    torch.manual_seed(1)
    est = CLUBEstimator(3, 4, hidden_dim=8).double()
    for nx, ny in ((6, 6), (2, 2)):
        x = torch.randn(nx, 3, dtype=torch.float64, requires_grad=True)
        y = (3.0 * torch.randn(ny, 4, dtype=torch.float64)).requires_grad_(True)
        lq, _ = est.log_q(x, y)
        mu, logvar = est.critic.mu(x), est.critic.logvar(x)
        diff = y[None, :, :] - mu[:, None, :]
        ref = -0.5 * (diff.pow(2) / logvar.exp()[:, None, :] + logvar[:, None, :] + math.log(2 * math.pi)).sum(-1)
        torch.testing.assert_close(lq, ref, rtol=1e-10, atol=1e-10)
        w = torch.randn(nx, ny, dtype=torch.float64)
        g = torch.autograd.grad((lq * w).sum(), [x, y, *est.parameters()])
        g_ref = torch.autograd.grad((ref * w).sum(), [x, y, *est.parameters()])
        for a, b in zip(g, g_ref):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
    x, y = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    lq, _ = est.log_q(x, y)
    assert est.learning_loss(x, y).item() == pytest.approx(-lq.diagonal().mean().item(), abs=1e-12)


# ------------------------------------------------------------------ per-side conditioning c = (c_x, c_y) (spec A.3.4)


def _loop_scores(kind, critic, xc, yc):
    """float64 loop reference of f([x_i, c_x_i], [y_j, c_y_j]) from the critic's parameters, one pair at a time."""
    n = xc.shape[0]
    out = torch.empty(n, n, dtype=torch.float64)
    for i in range(n):
        for j in range(n):
            if kind == "concat":
                h = torch.relu(critic.first(torch.cat([xc[i], yc[j]])))
                out[i, j] = critic.rest(h)[0]
            elif kind == "separable":
                out[i, j] = critic.g(xc[i]) @ critic.h(yc[j])
            else:
                out[i, j] = xc[i] @ critic.weight @ yc[j]
    return out.detach()


def _loop_infonce(s):
    n = len(s)
    return sum(s[i][i] - math.log(sum(math.exp(s[i][j]) for j in range(n))) + math.log(n) for i in range(n)) / n


@pytest.mark.parametrize("kind", ["concat", "separable", "bilinear"])
def test_per_side_scores_match_float64_loop(kind):
    torch.manual_seed(0)
    kw = {"bilinear": {"init_std": 1.0}}.get(kind, {"hidden_dim": 8})
    est = InfoNCEEstimator(3, 2, c_dim=(2, 4), critic=kind, critic_kwargs=kw).double()
    assert (est.critic.x_dim, est.critic.y_dim) == (5, 6)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(6, 3, generator=g, dtype=torch.float64), torch.randn(6, 2, generator=g, dtype=torch.float64)
    cx, cy = torch.randn(6, 2, generator=g, dtype=torch.float64), torch.randn(6, 4, generator=g, dtype=torch.float64)
    s, mask = est.scores(x, y, (cx, cy))
    ref = _loop_scores(kind, est.critic, torch.cat([x, cx], 1), torch.cat([y, cy], 1))
    assert mask is None
    torch.testing.assert_close(s.detach(), ref, rtol=1e-10, atol=1e-12)
    assert est(x, y, (cx, cy)).item() == pytest.approx(_loop_infonce(ref.tolist()), rel=1e-10)
    # swapping the two conditioning variables changes the scores (each side really gets its own)
    if kind != "bilinear":
        est2 = InfoNCEEstimator(3, 2, c_dim=3, critic=kind, critic_kwargs=kw).double()
        c1, c2 = cx[:, :1].repeat(1, 3), cy[:, :3]
        assert not torch.allclose(est2.scores(x, y, (c1, c2))[0], est2.scores(x, y, (c2, c1))[0])


def test_nce_club_per_side_matches_loop():
    torch.manual_seed(0)
    est = NCECLUBEstimator(3, 2, c_dim=(1, 2), critic_kwargs={"hidden_dim": 8}).double()
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(5, 2, generator=g, dtype=torch.float64)
    cx, cy = torch.randn(5, 1, generator=g, dtype=torch.float64), torch.randn(5, 2, generator=g, dtype=torch.float64)
    ref = _loop_scores("concat", est.critic, torch.cat([x, cx], 1), torch.cat([y, cy], 1)).tolist()
    v = est.estimates(x, y, (cx, cy))
    pos = sum(ref[i][i] for i in range(5)) / 5
    assert v["nce_club"].item() == pytest.approx(pos - sum(map(sum, ref)) / 25, rel=1e-10)
    off = sum(ref[i][j] for i in range(5) for j in range(5) if i != j) / 20
    assert v["nce_club_offdiag"].item() == pytest.approx(pos - off, rel=1e-10)
    assert v["infonce"].item() == pytest.approx(_loop_infonce(ref), rel=1e-10)


@pytest.mark.parametrize("cls", [InfoNCEEstimator, NWJEstimator, MINEEstimator, NCECLUBEstimator])
@pytest.mark.parametrize("negatives", ["batch", "same_condition"])
def test_single_c_equals_the_pair_c_c(cls, negatives):
    torch.manual_seed(0)
    est = cls(3, 2, c_dim=2, critic_kwargs={"hidden_dim": 8}, negatives=negatives)
    x, y = torch.randn(6, 3), torch.randn(6, 2)
    c = torch.tensor([[1.0, 0], [1, 0], [0, 1], [0, 1], [0, 1], [1, 0]])
    s1, m1 = est.scores(x, y, c)
    s2, m2 = est.scores(x, y, (c, c))
    assert torch.equal(s1, s2)
    assert (m1 is None and m2 is None) or torch.equal(m1, m2)
    e1, e2 = est.estimates(x, y, c), est.estimates(x, y, [c, c])
    assert e1.keys() == e2.keys() and all(torch.equal(e1[k], e2[k]) for k in e1)
    est.eval()  # MINE: no moving-average update between the two calls
    assert torch.equal(est.learning_loss(x, y, c), est.learning_loss(x, y, (c, c)))


def test_club_q_option_is_checked():
    with pytest.raises(ValueError, match="q must be one of"):
        CLUBEstimator(3, 2, q="quadratic")


# ------------------------------------------------------------------------------------ defaults: standardization, EMA


@pytest.mark.parametrize("cls", [InfoNCEEstimator, NCECLUBEstimator, CLUBEstimator])
def test_fitted_standardization_makes_the_estimates_invariant_to_affine_maps(cls):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(48, 3, generator=g).double(), torch.randn(48, 2, generator=g).double()
    x[:, 1] = 3.0  # a constant coordinate is only centred (positive scales: a negative one flips the coordinate)
    ax, bx = torch.tensor([2.0, 1.0, 10.0]).double(), torch.tensor([-3.0, 5.0, 4.0]).double()
    ay, by = torch.tensor([0.1, 7.0]).double(), torch.tensor([1.0, 2.0]).double()
    kw = {"hidden_dim": 6} if cls is CLUBEstimator else {"critic": "separable", "critic_kwargs": {"hidden_dim": 6}}
    torch.manual_seed(1)
    est = cls(3, 2, **kw).double().fit_standardization(x, y)
    assert torch.allclose(est.x_scale[1], torch.tensor(1.0).double()) and float(est.x_loc[1]) == 3.0
    out = est.estimates(x, y)
    est.fit_standardization(x * ax + bx, y * ay + by)
    moved = est.estimates(x * ax + bx, y * ay + by)
    for k in out:
        assert torch.allclose(out[k], moved[k], atol=1e-10), k
    # unfitted: the identity
    torch.manual_seed(1)
    plain = cls(3, 2, **kw).double()
    xs = (x - x.mean(0)) / torch.where(x.std(0) > 1e-8, x.std(0), torch.ones(3).double())
    ys = (y - y.mean(0)) / y.std(0)
    assert all(torch.allclose(out[k], plain.estimates(xs, ys)[k], atol=1e-10) for k in out)


