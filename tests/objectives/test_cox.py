"""COX objectives and selection rules against float64 brute-force references, and the Theorem 1 checks (spec §7.3.10)
on exact discrete joints."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from mmib.objectives.cox import (
    AnchorKL,
    ConnectionLoss,
    agreement_mask,
    disagreement_mask,
    emergent_correspondence,
    gaussian_kl_to_prior,
    mmd_rbf,
    select_agreement_anchors,
)


# ------------------------------------------------------------------ masks
@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("c", [2, 3, 5])
def test_disagreement_mask_matches_brute_force(k, c):
    g = torch.Generator().manual_seed(k * 10 + c)
    scores = [torch.randn(200, c, generator=g) for _ in range(k)]
    want = []
    for i in range(200):
        preds = {int(np.argmax(s[i].numpy())) for s in scores}
        want.append(len(preds) > 1)
    assert disagreement_mask(scores).tolist() == want
    assert agreement_mask(scores).tolist() == [not w for w in want]
    assert 0 < sum(want) < 200  # both sets occur, so the test can fail


def test_masks_reject_bad_input():
    with pytest.raises(ValueError, match="share one shape"):
        agreement_mask([torch.zeros(3, 2), torch.zeros(4, 2)])
    with pytest.raises(ValueError, match="2-D"):
        agreement_mask([torch.zeros(3)])
    with pytest.raises(ValueError, match="at least one"):
        agreement_mask([])


# ------------------------------------------------------------------ Eq. 14
def _eq14_reference(probs, t):
    n = probs[0].shape[0]
    rows = []
    for j in range(n):
        preds = [int(np.argmax(p[j])) for p in probs]
        if len(set(preds)) == 1:
            score = sum(float(np.max(p[j])) for p in probs) / len(probs)
            rows.append((-score, j, preds[0]))
    rows.sort()
    return [j for _, j, _ in rows[:t]], [y for _, _, y in rows[:t]]


@pytest.mark.parametrize("k,t", [(2, 10), (3, 25), (2, 1000)])
def test_eq14_selection_matches_reference(k, t):
    g = torch.Generator().manual_seed(k + t)
    probs = [torch.softmax(torch.randn(300, 4, generator=g) * 2, 1).double() for _ in range(k)]
    idx, pl, score = select_agreement_anchors(probs, t)
    ref_idx, ref_y = _eq14_reference([p.numpy() for p in probs], t)
    assert idx.tolist() == ref_idx
    assert pl.tolist() == ref_y
    assert torch.all(score[:-1] >= score[1:])


def test_eq14_ties_break_by_lower_index():
    p = torch.tensor([[0.6, 0.4], [0.7, 0.3], [0.6, 0.4], [0.4, 0.6], [0.7, 0.3]])
    idx, pl, _ = select_agreement_anchors([p, p.clone()], 4)
    assert idx.tolist() == [1, 4, 0, 2]
    assert pl.tolist() == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="top_t"):
        select_agreement_anchors([p, p], -1)


# ------------------------------------------------------------------ emergent correspondence (Eq. 15)
@pytest.mark.parametrize("chunk", [1, 7, 4096])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_emergent_correspondence_chunked_matches_brute_force(chunk, k):
    g = torch.Generator().manual_seed(chunk + 100 * k)
    z = torch.randn(23, 5, generator=g, dtype=torch.float64)
    maps = [torch.randn(17, 5, generator=g, dtype=torch.float64) for _ in range(k)]
    y = torch.randint(0, 4, (17,), generator=g)
    idx, labels, istar, dist = emergent_correspondence(z, maps, y, top_s=6, chunk_size=chunk)
    ref_i, ref_d = [], []
    for j in range(23):
        best, arg = math.inf, -1
        for i in range(17):
            d = sum(math.sqrt(sum((float(z[j, c]) - float(m[i, c])) ** 2 for c in range(5))) for m in maps) / k
            if d < best:
                best, arg = d, i
        ref_i.append(arg)
        ref_d.append(best)
    assert istar.tolist() == ref_i
    np.testing.assert_allclose(dist.numpy(), ref_d, rtol=1e-10)
    order = sorted(range(23), key=lambda j: (ref_d[j], j))[:6]
    assert idx.tolist() == order
    assert labels.tolist() == [int(y[ref_i[j]]) for j in order]


def test_emergent_correspondence_uses_same_instance_across_modalities():
    # OOM point close to map_1 of instance 0 and to map_2 of instance 1, but to both maps of instance 2 moderately:
    z = torch.tensor([[0.0, 0.0]])
    m1 = torch.tensor([[0.0, 0.0], [10.0, 0.0], [1.0, 0.0]])
    m2 = torch.tensor([[10.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    _, labels, istar, dist = emergent_correspondence(z, [m1, m2], torch.tensor([5, 6, 7]), 1)
    assert istar.tolist() == [2] and labels.tolist() == [7]
    assert float(dist[0]) == pytest.approx(1.0)


def test_emergent_correspondence_bad_input():
    with pytest.raises(ValueError, match="mapping 1"):
        emergent_correspondence(torch.zeros(3, 2), [torch.zeros(4, 2), torch.zeros(5, 2)], torch.zeros(4), 1)
    with pytest.raises(ValueError, match="y_im"):
        emergent_correspondence(torch.zeros(3, 2), [torch.zeros(4, 2)], torch.zeros(3), 1)


# ------------------------------------------------------------------ exploration KL (Eqs. 10/13/15)
def _kl_reference(ld, la, normalizer, direction):
    pd = torch.softmax(ld.double(), 1).numpy()
    pa = torch.softmax(la.double(), 1).numpy()
    total = 0.0
    for d in range(pd.shape[0]):
        for a in range(pa.shape[0]):
            p, q = (pd[d], pa[a]) if direction == "paper" else (pa[a], pd[d])
            total += sum(p[c] * (math.log(p[c]) - math.log(q[c])) for c in range(pd.shape[1]))
    nd, na = pd.shape[0], pa.shape[0]
    return total / {"sum_sizes": na + nd, "num_pairs": na * nd, "num_D": nd}[normalizer]


@pytest.mark.parametrize("normalizer", ["sum_sizes", "num_pairs", "num_D"])
@pytest.mark.parametrize("direction", ["paper", "forward"])
@pytest.mark.parametrize("nd,na", [(1, 1), (5, 9), (13, 3)])
def test_anchor_kl_matches_double_loop(normalizer, direction, nd, na):
    g = torch.Generator().manual_seed(nd * 100 + na)
    ld = torch.randn(nd, 6, generator=g, dtype=torch.float64) * 2
    la = torch.randn(na, 6, generator=g, dtype=torch.float64) * 2
    got = AnchorKL(normalizer, direction)(ld, la).loss
    assert float(got) == pytest.approx(_kl_reference(ld, la, normalizer, direction), abs=1e-6, rel=1e-9)


def test_anchor_kl_stopgrad_and_empty_sets():
    ld = torch.randn(4, 3, requires_grad=True)
    la = torch.randn(5, 3, requires_grad=True)
    AnchorKL(stopgrad_anchor=True)(ld, la).loss.backward()
    assert la.grad is None and ld.grad is not None and ld.grad.abs().sum() > 0
    la2 = la.detach().clone().requires_grad_(True)
    AnchorKL(stopgrad_anchor=False)(ld, la2).loss.backward()
    assert la2.grad is not None and la2.grad.abs().sum() > 0
    out = AnchorKL()(torch.zeros(0, 3, requires_grad=True), la)
    assert float(out.loss.detach()) == 0.0 and out.loss.requires_grad
    with pytest.raises(ValueError, match="normalizer"):
        AnchorKL(normalizer="mean")
    with pytest.raises(ValueError, match="direction"):
        AnchorKL(direction="reverse")
    with pytest.raises(ValueError, match="same C"):
        AnchorKL()(torch.zeros(2, 3), torch.zeros(2, 4))


def test_anchor_kl_minimizer_is_normalized_geometric_mean():
    # the spec's remark: minimizing over p_d drives it to softmax(mean_a log p_a)
    la = torch.randn(7, 4, dtype=torch.float64)
    target = torch.log_softmax(torch.log_softmax(la, 1).mean(0), 0)
    best = AnchorKL()(target[None], la).loss
    for _ in range(20):
        other = target + 0.3 * torch.randn(4, dtype=torch.float64)
        assert float(AnchorKL()(other[None], la).loss) >= float(best) - 1e-12


# ------------------------------------------------------------------ connection loss (Eq. 9), VIB KL, MMD
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_connection_loss_matches_loop(reduction):
    g = torch.Generator().manual_seed(3)
    z = torch.randn(6, 4, generator=g, dtype=torch.float64)
    maps = [torch.randn(6, 4, generator=g, dtype=torch.float64) for _ in range(3)]
    ref = 0.0
    for i in range(6):
        for m in maps:
            ref += sum((float(z[i, c]) - float(m[i, c])) ** 2 for c in range(4))
    ref /= 6
    if reduction == "mean":
        ref /= 4
    assert float(ConnectionLoss(reduction)(z, maps).loss) == pytest.approx(ref, rel=1e-12)


def test_connection_loss_detach_target():
    z = torch.randn(5, 3, requires_grad=True)
    m = torch.randn(5, 3, requires_grad=True)
    ConnectionLoss(detach_target=True)(z, [m]).loss.backward()
    assert z.grad is None and m.grad is not None
    ConnectionLoss(detach_target=False)(z, [m]).loss.backward()
    assert z.grad is not None
    with pytest.raises(ValueError, match="reduction"):
        ConnectionLoss("max")
    with pytest.raises(ValueError, match="mapping 0"):
        ConnectionLoss()(z, [torch.zeros(5, 2)])


def test_gaussian_kl_to_prior_closed_form():
    mu = torch.tensor([[0.5, -1.0]], dtype=torch.float64)
    logvar = torch.tensor([[0.2, -0.3]], dtype=torch.float64)
    ref = sum(0.5 * (m * m + math.exp(lv) - 1 - lv) for m, lv in zip([0.5, -1.0], [0.2, -0.3]))
    assert float(gaussian_kl_to_prior(mu, logvar)) == pytest.approx(ref, rel=1e-12)
    assert float(gaussian_kl_to_prior(torch.zeros(3, 2), torch.zeros(3, 2))) == 0.0


def test_mmd_rbf_matches_double_loop():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(7, 3, generator=g, dtype=torch.float64)
    y = torch.randn(9, 3, generator=g, dtype=torch.float64) + 0.5
    s = 1.3

    def k(a, b):
        return math.exp(-float(((a - b) ** 2).sum()) / (2 * s * s))

    ref = (sum(k(a, b) for a in x for b in x) / 49 + sum(k(a, b) for a in y for b in y) / 81
           - 2 * sum(k(a, b) for a in x for b in y) / 63)
    assert float(mmd_rbf(x, y, bandwidth=s)) == pytest.approx(ref, rel=1e-10)
    assert float(mmd_rbf(x, x)) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="bandwidth"):
        mmd_rbf(x, y, bandwidth=0.0)


# ------------------------------------------------------------------ Theorem 1 (spec §7.1, §7.3.10)
def _dist(joint):
    import dit

    outcomes, pmf = [], []
    for idx in itertools.product(*[range(s) for s in joint.shape]):
        if joint[idx] > 0:
            outcomes.append("".join(map(str, idx)))
            pmf.append(float(joint[idx]))
    return dit.Distribution(outcomes, pmf)


@pytest.mark.parametrize("seed", range(5))
def test_theorem1_rhs_identity_on_exact_discrete_joints(seed):
    """RHS(11) = I(O;X2;Y|X1) + I(O;X1;Y|X2) + 2 I(O;Y|X1,X2) equals I(O;Y|X1) + I(O;Y|X2) (issue (a)) and (12),
    with the conditional co-informations from dit and the rest from mmib.info (axes: O=0, X1=1, X2=2, Y=3)."""
    from dit.multivariate import coinformation

    from mmib.info import co_information, conditional_mutual_information, mutual_information

    rng = np.random.default_rng(seed)
    joint = rng.dirichlet(np.ones(16) * 0.7).reshape(2, 2, 2, 2)
    d = _dist(joint)
    ci_2 = coinformation(d, [[0], [2], [3]], [1])  # I(O;X2;Y|X1), nats below after conversion
    ci_1 = coinformation(d, [[0], [1], [3]], [2])
    ln2 = math.log(2)
    cmi_12 = conditional_mutual_information(joint, 0, 3, (1, 2))
    rhs11 = (ci_2 + ci_1) * ln2 + 2 * cmi_12
    simplified = conditional_mutual_information(joint, 0, 3, 1) + conditional_mutual_information(joint, 0, 3, 2)
    rhs12 = mutual_information(joint, 0, 3) - co_information(joint, [0, 1, 2, 3]) + cmi_12
    assert rhs11 == pytest.approx(simplified, abs=1e-10)
    assert rhs11 == pytest.approx(rhs12, abs=1e-10)
    # issue (b): E KL(p(y|x1,x2,o) || p(y|x1)) is I(Y; X2,O | X1), not the co-information
    kl = 0.0
    p = joint
    p_x1y = p.sum(axis=(0, 2))
    for o, a, b, y in itertools.product(range(2), repeat=4):
        if p[o, a, b, y] > 0:
            p_full = p[o, a, b, y] / p[o, a, b, :].sum()
            p_1 = p_x1y[a, y] / p_x1y[a, :].sum()
            kl += p[o, a, b, y] * math.log(p_full / p_1)
    assert kl == pytest.approx(conditional_mutual_information(joint, 3, (0, 2), 1), abs=1e-10)
    assert abs(kl - ci_2 * ln2) > 1e-6


def test_theorem1_counterexample():
    """Y ~ Bern(0.5), X2 = Y, X1 = Y flipped w.p. 0.2, X^O constant: alpha(h1*, h2*) = 0.2 > RHS(11) = 0."""
    from dit.multivariate import coinformation

    from mmib.info import conditional_mutual_information

    joint = np.zeros((1, 2, 2, 2))  # O, X1, X2, Y
    for y in (0, 1):
        joint[0, y, y, y] += 0.5 * 0.8
        joint[0, 1 - y, y, y] += 0.5 * 0.2
    # Bayes classifiers on single inputs: h1*(x1) = argmax_y p(y|x1), h2*(x2) = argmax_y p(y|x2)
    p_x1y, p_x2y = joint.sum(axis=(0, 2)), joint.sum(axis=(0, 1))
    h1, h2 = p_x1y.argmax(axis=1), p_x2y.argmax(axis=1)
    alpha = sum(joint[0, a, b, :].sum() * (h1[a] != h2[b]) for a in range(2) for b in range(2))
    assert alpha == pytest.approx(0.2)
    d = _dist(joint)
    rhs = (coinformation(d, [[0], [2], [3]], [1]) + coinformation(d, [[0], [1], [3]], [2])) * math.log(2) \
        + 2 * conditional_mutual_information(joint, 0, 3, (1, 2))
    assert rhs == pytest.approx(0.0, abs=1e-12)
    assert alpha > rhs
