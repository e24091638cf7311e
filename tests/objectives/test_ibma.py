"""IBMA's IBB (objectives/ibma.py) against a direct float64 evaluation of the spec's equations (spec ibma §3, §8.2)."""

import math

import pytest
import torch

from mmib.objectives.ibma import (
    IBBLoss,
    alignment_term,
    class_means,
    compression_term,
    plugin_ib,
    plugin_mi,
    soft_assign,
    update_q,
)

C = 4


def _phi_ref(v, K, tau=1.0):
    """φ(v, a) = exp(-||v-K_a||²/τ) / Σ_a' exp(...), float64 loops."""
    out = []
    for row in v.double().tolist():
        d = [sum((x - k) ** 2 for x, k in zip(row, kr)) for kr in K.double().tolist()]
        m = max(-t / tau for t in d)
        e = [math.exp(-t / tau - m) for t in d]
        out.append([x / sum(e) for x in e])
    return torch.tensor(out, dtype=torch.float64)


def _joint_ref(z, Kz, x, Kx):
    """eq. (3)/(4) literally: exp(-||z-F_a||² - ||x-C_y||²) normalised over all (a, y) cells."""
    out = []
    for zr, xr in zip(z.double().tolist(), x.double().tolist()):
        cells = [[-(sum((a - b) ** 2 for a, b in zip(zr, fa)) + sum((a - b) ** 2 for a, b in zip(xr, cy)))
                  for cy in Kx.double().tolist()] for fa in Kz.double().tolist()]
        m = max(max(r) for r in cells)
        e = [[math.exp(c - m) for c in r] for r in cells]
        s = sum(sum(r) for r in e)
        out.append([[c / s for c in r] for r in e])
    return torch.tensor(out, dtype=torch.float64)


def _setup(n=12, d=3, dx=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    z1, z2, zf = (torch.randn(n, d, generator=g) for _ in range(3))
    x1, x2 = torch.randn(n, dx, generator=g), torch.randn(n, dx + 1, generator=g)
    y = torch.arange(n) % C
    F1, F2, Ff = (torch.randn(C, d, generator=g) for _ in range(3))
    C1, C2 = torch.randn(C, dx, generator=g), torch.randn(C, dx + 1, generator=g)
    p = torch.bincount(y, minlength=C).float() / n
    q1, q2, qf = (torch.rand(C, C, generator=g) + 0.05 for _ in range(3))
    q1, q2, qf = (q / q.sum(0, keepdim=True) for q in (q1, q2, qf))
    return dict(z1=z1, z2=z2, zf=zf, x1=x1, x2=x2, y=y, F1=F1, F2=F2, Ff=Ff, C1=C1, C2=C2, p=p, q1=q1, q2=q2, qf=qf)


def test_soft_assign_matches_reference():
    s = _setup()
    phi, logphi = soft_assign(s["z1"], s["F1"])
    torch.testing.assert_close(phi.double(), _phi_ref(s["z1"], s["F1"]), atol=1e-6, rtol=0)
    torch.testing.assert_close(logphi.exp(), phi)
    phi_t, _ = soft_assign(s["z1"], s["F1"], temperature=3.0)
    torch.testing.assert_close(phi_t.double(), _phi_ref(s["z1"], s["F1"], 3.0), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="temperature"):
        soft_assign(s["z1"], s["F1"], temperature=0.0)
    with pytest.raises(ValueError, match="agree"):
        soft_assign(s["z1"], s["C1"])


def test_joint_factorises():
    s = _setup()
    joint = _joint_ref(s["z1"], s["F1"], s["x1"], s["C1"])
    a, b = _phi_ref(s["z1"], s["F1"]), _phi_ref(s["x1"], s["C1"])
    torch.testing.assert_close(joint, a[:, :, None] * b[:, None, :], atol=1e-12, rtol=0)


def _u_ref(z, Fz, x, Cx, p):
    joint = _joint_ref(z, Fz, x, Cx)
    a = _phi_ref(z, Fz)
    out = []
    for i in range(joint.shape[0]):
        out.append(sum(float(joint[i, aa, yy]) * math.log(float(joint[i, aa, yy]) / (float(p[yy]) * float(a[i, aa])))
                       for aa in range(C) for yy in range(C)))
    return torch.tensor(out, dtype=torch.float64)


def test_u_literal_equals_kl_of_input_assignment_and_is_nonnegative():
    s = _setup()
    a, la = soft_assign(s["z1"], s["F1"])
    b, lb = soft_assign(s["x1"], s["C1"])
    u = compression_term(a, la, b, lb, s["p"].log())
    torch.testing.assert_close(u.double(), _u_ref(s["z1"], s["F1"], s["x1"], s["C1"], s["p"]), atol=1e-5, rtol=1e-5)
    kl = (b * (lb - s["p"].log()[None])).sum(1)
    torch.testing.assert_close(u, kl, atol=1e-5, rtol=1e-5)
    assert (u >= -1e-6).all()


def test_u_has_zero_gradient_wrt_representation():
    s = _setup()
    z = s["z1"].clone().requires_grad_(True)
    a, la = soft_assign(z, s["F1"])
    b, lb = soft_assign(s["x1"], s["C1"])
    compression_term(a, la, b, lb, s["p"].log()).sum().backward()
    assert z.grad.abs().max() < 1e-5


def _v_ref(z, Fz, zo, Fo, q):
    a, ao = _phi_ref(z, Fz), _phi_ref(zo, Fo)
    return torch.tensor([sum(float(a[i, aa]) * float(ao[i, yy]) * math.log(float(q[aa, yy]))
                             for aa in range(C) for yy in range(C)) for i in range(a.shape[0])], dtype=torch.float64)


def test_ibb_loss_matches_direct_float64_evaluation():
    s = _setup()
    eta = 0.7
    loss = IBBLoss(eta)
    out = loss([s["z1"], s["z2"]], s["zf"], [s["x1"], s["x2"]], s["y"], [s["F1"], s["F2"]], s["Ff"],
               [s["C1"], s["C2"]], s["p"], [s["q1"], s["q2"]], s["qf"])
    u1 = _u_ref(s["z1"], s["F1"], s["x1"], s["C1"], s["p"])
    u2 = _u_ref(s["z2"], s["F2"], s["x2"], s["C2"], s["p"])
    v1 = _v_ref(s["z1"], s["F1"], s["z2"], s["F2"], s["q1"])
    v2 = _v_ref(s["z2"], s["F2"], s["z1"], s["F1"], s["q2"])
    uf = _u_ref(s["zf"], s["Ff"], s["x1"], s["C1"], s["p"]) + _u_ref(s["zf"], s["Ff"], s["x2"], s["C2"], s["p"])
    g = _phi_ref(s["zf"], s["Ff"])
    vf = torch.tensor([sum(float(g[i, a]) * math.log(float(s["qf"][a, int(s["y"][i])])) for a in range(C))
                       for i in range(g.shape[0])], dtype=torch.float64)
    ref = eta * ((u1 - v1).mean() + (u2 - v2).mean() + (uf - vf).mean())
    assert abs(float(out.loss) - float(ref)) < 1e-5
    assert abs(float(out.terms["ibb_U_0_1"]) - float(u1.mean())) < 1e-5
    assert abs(float(out.terms["ibb_V_1_0"]) - float(v2.mean())) < 1e-5
    assert abs(float(out.terms["ibb_V_fuse"]) - float(vf.mean())) < 1e-5
    assert float(out.terms["ibb"]) >= 0  # U >= 0, V <= 0
    no_msra = IBBLoss(eta, modality_alignment=False)(
        [s["z1"], s["z2"]], s["zf"], [s["x1"], s["x2"]], s["y"], [s["F1"], s["F2"]], s["Ff"], [s["C1"], s["C2"]],
        s["p"], [s["q1"], s["q2"]], s["qf"])
    assert abs(float(no_msra.loss) - eta * float((uf - vf).mean())) < 1e-5


def test_uniform_q_gives_constant_v_and_no_gradient():
    s = _setup()
    z1, z2, zf = (s[k].clone().requires_grad_(True) for k in ("z1", "z2", "zf"))
    uq = torch.full((C, C), 1.0 / C)
    out = IBBLoss(1.0)([z1, z2], zf, [s["x1"], s["x2"]], s["y"], [s["F1"], s["F2"]], s["Ff"], [s["C1"], s["C2"]],
                       s["p"], [uq, uq], uq)
    assert abs(float(out.terms["ibb_V_0_1"]) + math.log(C)) < 1e-5
    out.loss.backward()
    for t in (z1, z2, zf):
        assert t.grad.abs().max() < 1e-5


def test_lemma_bounds_hold_on_random_features():
    s = _setup(n=200, seed=3)
    a1, la1 = soft_assign(s["z1"], s["F1"])
    a2, _ = soft_assign(s["z2"], s["F2"])
    b1, lb1 = soft_assign(s["x1"], s["C1"])
    n = a1.shape[0]
    # Lemma A.1: mean U >= plug-in I(Z;X)
    u = compression_term(a1, la1, b1, lb1, s["p"].log())
    assert float(u.mean()) >= float(plugin_mi(a1.T @ b1 / n)) - 1e-6
    # Lemma A.2 for any column-stochastic Q (random, and the paper's label-conditional one)
    izz = float(plugin_mi(a1.T @ a2 / n))
    for q in (s["q1"], update_q(a1, s["y"], C)):
        assert float(alignment_term(a1, a2, q).mean()) <= izz + 1e-6


def test_update_q_matches_algorithm_3_loop():
    s = _setup(n=30)
    a, _ = soft_assign(s["z1"], s["F1"])
    q = update_q(a, s["y"], C)
    ref = torch.zeros(C, C, dtype=torch.float64)
    m = torch.zeros(C, dtype=torch.float64)
    for i in range(a.shape[0]):
        for aa in range(C):
            ref[aa, int(s["y"][i])] += float(a[i, aa])
        m[int(s["y"][i])] += 1
    ref /= m[None, :]
    torch.testing.assert_close(q.double(), ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(q.sum(0), torch.ones(C))
    prev = torch.full((C, C), 0.25)
    q_missing = update_q(a[s["y"] != 2], s["y"][s["y"] != 2], C, prev)
    torch.testing.assert_close(q_missing[:, 2], prev[:, 2])


def test_class_means_and_plugin_ib():
    s = _setup(n=40)
    cm = class_means(s["z1"], s["y"], C)
    for c in range(C):
        torch.testing.assert_close(cm[c], s["z1"][s["y"] == c].mean(0))
    a1, _ = soft_assign(s["z1"], s["F1"])
    a2, _ = soft_assign(s["z2"], s["F2"])
    b1, _ = soft_assign(s["x1"], s["C1"])
    b2, _ = soft_assign(s["x2"], s["C2"])
    g, _ = soft_assign(s["zf"], s["Ff"])
    st = plugin_ib([a1, a2], [b1, b2], g, s["y"], C)
    # float64 reference of I(Z;X) from the soft joint
    P = (a1.double().T @ b1.double()) / 40
    ref = sum(float(P[i, j]) * math.log(float(P[i, j]) / (float(P[i].sum()) * float(P[:, j].sum())))
              for i in range(C) for j in range(C))
    assert abs(st["I_Z0_X0"] - ref) < 1e-5
    assert abs(st["IB_0"] - (st["I_Z0_X0"] - st["I_Z0_Z1"])) < 1e-9
    assert abs(st["IB_fuse"] - (st["I_Z_X0"] + st["I_Z_X1"] - st["I_Z_Y"])) < 1e-9
    assert all(0 <= st[k] <= math.log(C) + 1e-6 for k in st if k.startswith("I_"))


def test_ibb_is_separable_over_samples():
    s = _setup(n=10)
    a1, la1 = soft_assign(s["z1"], s["F1"])
    a2, _ = soft_assign(s["z2"], s["F2"])
    v = alignment_term(a1, a2, s["q1"])
    perm = torch.randperm(10)
    torch.testing.assert_close(alignment_term(a1[perm], a2[perm], s["q1"]), v[perm])


def test_ibb_loss_argument_errors():
    with pytest.raises(ValueError, match="eta"):
        IBBLoss(-1.0)
    with pytest.raises(ValueError, match="temperature"):
        IBBLoss(0.5, temperature=0.0)
