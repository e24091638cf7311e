"""MonotoneMap (the estimators' ``input_map="monotone"``): strictly increasing, its log-derivative equals autograd's,
it starts near the identity, and the estimators use it without changing their default behaviour."""

import math

import pytest
import torch

from mmib.info.critics import MonotoneMap
from mmib.info.estimators import build_estimator


def _randomized(dim=4, k=5, seed=0):
    torch.manual_seed(seed)
    phi = MonotoneMap(dim, components=k).double()
    with torch.no_grad():
        for p in phi.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # far from the initialization (lr_scale multiplies it)
    return phi


def test_strictly_increasing_and_log_derivative_matches_autograd():
    phi = _randomized()
    u = torch.linspace(-6, 6, 401, dtype=torch.float64)[:, None].expand(401, 4).clone()
    out = phi(u)
    assert (out.diff(dim=0) > 0).all()
    # the derivative of every coordinate by autograd (the map acts per coordinate), summed in log
    uu = u.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(phi(uu).sum(), uu)
    ref = torch.log(grad).sum(-1)
    torch.testing.assert_close(phi.log_derivative(u), ref, rtol=1e-10, atol=1e-10)


def test_starts_near_the_identity_and_checks_its_arguments():
    phi = MonotoneMap(3)
    u = torch.randn(100, 3)
    assert (phi(u) - u).abs().max() < 0.15
    assert phi.lr_scale == 30.0
    for bad in ({"dim": 0}, {"dim": 2, "components": 0}, {"dim": 2, "lr_scale": 0}):
        with pytest.raises(ValueError):
            MonotoneMap(**bad)


def test_lr_scale_multiplies_adams_steps():
    """The parameters are stored divided by lr_scale: one Adam step moves the effective value lr_scale × lr."""
    moves = []
    for s in (1.0, 30.0):
        phi = MonotoneMap(1, components=1, lr_scale=s)
        opt = torch.optim.Adam(phi.parameters(), lr=1e-4)
        before = phi.c.detach() * s
        phi(torch.randn(64, 1)).pow(2).mean().backward()
        opt.step()
        moves.append(float((phi.c.detach() * s - before).abs()))
    assert moves[1] / moves[0] == pytest.approx(30.0, rel=1e-2)  # up to Adam's eps


def test_default_estimators_are_unchanged_and_maps_are_opt_in():
    torch.manual_seed(0)
    a = build_estimator("infonce", 3, 2, critic="separable")
    torch.manual_seed(0)
    b = build_estimator("infonce", 3, 2, critic="separable", input_map="monotone")
    assert not hasattr(a, "x_map") and isinstance(b.x_map, MonotoneMap) and b.y_map.a.shape == (2,)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)  # the critic's initialization is the same
    with pytest.raises(ValueError, match="input_map"):
        build_estimator("infonce", 3, 2, input_map="rank")


def test_club_with_maps_is_the_flow_likelihood():
    """CLUB's training loss with input_map is the negative log-likelihood of the flow φ(y) ~ N(μ(φx(x)), σ²):
    a float64 loop reference; the CLUB estimate itself is unchanged by the Jacobian term."""
    torch.manual_seed(1)
    est = build_estimator("club", 3, 2, input_map="monotone", hidden_dim=8).double()
    with torch.no_grad():
        for p in (*est.x_map.parameters(), *est.y_map.parameters()):
            p.add_(torch.randn_like(p) * 0.05)
    x, y = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64) * 2
    loss, vals = est.loss_and_estimates(x, y)
    total = 0.0
    for i in range(6):
        xi, yi = est.x_map(x[i:i + 1]), y[i:i + 1]
        mu, lv = est.critic.mu(xi)[0].tolist(), est.critic.logvar(xi)[0].tolist()
        for d in range(2):
            def phi_d(t, d=d, yi=yi):
                row = yi.clone()
                row[0, d] = t
                return est.y_map(row)[0, d]
            t = yi[0, d].clone().requires_grad_(True)
            (deriv,) = torch.autograd.grad(phi_d(t), t)
            z = float(phi_d(yi[0, d].detach()).detach())
            total += (-0.5 * ((z - mu[d]) ** 2 / math.exp(lv[d]) + lv[d] + math.log(2 * math.pi))
                      + math.log(float(deriv)))
    assert float(loss.detach()) == pytest.approx(-total / 6, rel=1e-9)
    assert float(est.learning_loss(x, y).detach()) == pytest.approx(-total / 6, rel=1e-9)
    lq, _ = est.log_q(x, y)
    ref = lq.diagonal().mean() - lq.mean()  # CLUB (Cheng et al. Eq. 14) on the mapped y
    assert float(vals["club"].detach()) == pytest.approx(float(ref.detach()), rel=1e-9)
