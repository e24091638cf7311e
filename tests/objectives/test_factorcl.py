"""FactorCL estimators and objective (spec A.3, A.5, D.1.1, D.1.2, D.2.6) against float64 references."""

import math

import pytest
import torch

from mmib.objectives.factorcl import (
    CLUB_TERMS,
    FACTORCL_TERMS,
    ConcatCritic,
    FactorCLLoss,
    infonce_from_scores,
    nce_club_from_scores,
)
from mmib.objectives.factorcl import critic_infonce as infonce_lower_bound
from mmib.objectives.factorcl import critic_nce_club as nce_club_upper_bound


def naive_pairwise(critic, a, b):
    n = a.shape[0]
    t = torch.empty(n, n, dtype=a.dtype)
    for i in range(n):
        for j in range(n):
            t[i, j] = critic(a[j : j + 1], b[i : i + 1])[0]
    return t


def ref_infonce(t):
    n = len(t)
    pos = sum(t[i][i] for i in range(n)) / n
    neg = sum(math.log(sum(math.exp(t[i][j]) for j in range(n))) - math.log(n) for i in range(n)) / n
    return pos - neg


def ref_club(t, off_diagonal=False):
    n = len(t)
    pos = sum(t[i][i] for i in range(n)) / n
    if off_diagonal:
        return pos - sum(t[i][j] for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    return pos - sum(t[i][j] for i in range(n) for j in range(n)) / n**2


def test_concat_critic_pairwise_equals_concatenation():
    c = ConcatCritic(3, 4, hidden=(8, 6)).double()
    a, b = torch.randn(5, 3, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64)
    torch.testing.assert_close(c.pairwise(a, b), naive_pairwise(c, a, b))
    torch.testing.assert_close(c(a, b), c.pairwise(a, b).diagonal())


@pytest.mark.parametrize("off", [False, True])
def test_estimators_match_loop_reference(off):
    c = ConcatCritic(3, 2, hidden=(7,)).double()
    a, b = torch.randn(6, 3, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    t = naive_pairwise(c, a, b).tolist()
    assert float(infonce_lower_bound(c, a, b)) == pytest.approx(ref_infonce(t), rel=1e-10)
    assert float(nce_club_upper_bound(c, a, b, off)) == pytest.approx(ref_club(t, off), rel=1e-10, abs=1e-12)


def test_infonce_never_exceeds_log_n_even_with_adversarial_critic():  # D.1.1
    n = 16
    t = torch.full((n, n), -1e4, dtype=torch.float64)
    t.diagonal().fill_(1e4)
    assert float(infonce_from_scores(t)) == pytest.approx(math.log(n), abs=1e-9)
    for _ in range(20):
        t = torch.randn(n, n, dtype=torch.float64) * 100
        assert float(infonce_from_scores(t)) <= math.log(n) + 1e-9


def test_critic_shift_invariances():  # D.1.2
    n = 9
    t = torch.randn(n, n, dtype=torch.float64)  # t[i, j] = f(a_j, b_i)
    cb = torch.randn(n, 1, dtype=torch.float64)  # c(b_i): constant within a softmax row
    ca = torch.randn(1, n, dtype=torch.float64)  # c(a_j)
    assert float(infonce_from_scores(t + cb)) == pytest.approx(float(infonce_from_scores(t)), abs=1e-10)
    assert float(nce_club_from_scores(t + cb)) == pytest.approx(float(nce_club_from_scores(t)), abs=1e-10)
    assert float(nce_club_from_scores(t + ca)) == pytest.approx(float(nce_club_from_scores(t)), abs=1e-10)
    # the i != j variant is invariant too: a per-column shift moves the diagonal and off-diagonal means equally
    for s in (ca, cb):
        assert float(nce_club_from_scores(t + s, True)) == pytest.approx(float(nce_club_from_scores(t, True)), abs=1e-10)


def _dims(a=4, b=3):
    return {t: (a, b) for t in FACTORCL_TERMS}


def test_factorcl_objective_exact_terms_and_signs():  # D.2.6
    torch.manual_seed(1)
    loss = FactorCLLoss(_dims(), critic_hidden=(8,)).double()
    inputs = {t: (torch.randn(6, 4, dtype=torch.float64), torch.randn(6, 3, dtype=torch.float64)) for t in FACTORCL_TERMS}
    out = loss(inputs)
    est = {}
    for t in FACTORCL_TERMS:
        tt = naive_pairwise(loss.critics[t], *inputs[t]).tolist()
        est[t] = ref_club(tt) if t in CLUB_TERMS else ref_infonce(tt)
    objective = (est["nce"] - est["club_cond"] + est["nce_self1"] + est["nce_self2"] - est["club"]
                 + est["nce_cond"])
    assert float(out.loss) == pytest.approx(-objective, rel=1e-9)
    assert set(out.terms) == {f"I_{t}" for t in FACTORCL_TERMS} | {"objective"}
    assert list(FACTORCL_TERMS) == ["nce", "club_cond", "nce_self1", "nce_self2", "club", "nce_cond"]
    assert [FACTORCL_TERMS[t] for t in FACTORCL_TERMS] == [1, -1, 1, 1, -1, 1]
    for t in FACTORCL_TERMS:
        assert float(out.terms[f"I_{t}"]) == pytest.approx(est[t], rel=1e-9, abs=1e-12)


def test_club_critic_loss_is_infonce_of_the_club_critics():
    loss = FactorCLLoss(_dims(), critic_hidden=(8,)).double()
    inputs = {t: (torch.randn(5, 4, dtype=torch.float64), torch.randn(5, 3, dtype=torch.float64)) for t in CLUB_TERMS}
    out = loss.club_critic_loss(inputs)
    want = sum(ref_infonce(naive_pairwise(loss.critics[t], *inputs[t]).tolist()) for t in CLUB_TERMS)
    assert float(out.loss) == pytest.approx(-want, rel=1e-9)
    club_ids = {id(p) for p in loss.club_parameters()}
    assert club_ids.isdisjoint({id(p) for p in loss.main_parameters()})
    assert len(club_ids) + len(loss.main_parameters()) == len(list(loss.parameters()))


def test_bad_input():
    with pytest.raises(ValueError, match="hidden layer"):
        ConcatCritic(2, 2, hidden=())
    with pytest.raises(ValueError, match="feature sizes"):
        ConcatCritic(2, 2).pairwise(torch.randn(3, 3), torch.randn(3, 2))
    with pytest.raises(ValueError, match="exactly the terms"):
        FactorCLLoss({"nce": (2, 2)})
    loss = FactorCLLoss(_dims(2, 2), critic_hidden=(4,))
    with pytest.raises(ValueError, match="missing critic inputs"):
        loss({"nce": (torch.randn(3, 2), torch.randn(3, 2))})
    with pytest.raises(ValueError, match="at least 2 samples"):
        loss({t: (torch.randn(1, 2), torch.randn(1, 2)) for t in FACTORCL_TERMS})


def test_concatenation_conditioning_on_xor_has_closed_form_targets():
    """D.1.5 with the concatenation conditioning of FactorCL: with in-batch negatives, concatenating one-hot Y to both
    critic inputs estimates I([X1,Y];[X2,Y]) = H(Y) + I(X1;X2|Y) = ln 4 on XOR data (a constant offset H(Y) over the
    CMI ln 2), concatenating it to X1 only estimates I(X2;Y) + I(X1;X2|Y) = ln 2, and I(X1;X2) = 0."""
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    crit = {"both": ConcatCritic(3, 3, hidden=(32,)), "first": ConcatCritic(3, 1, hidden=(32,)),
            "none": ConcatCritic(1, 1, hidden=(32,))}
    opt = torch.optim.Adam([p for c in crit.values() for p in c.parameters()], lr=1e-2)

    def batch(n=64):
        b1, b2 = torch.randint(0, 2, (n,), generator=g), torch.randint(0, 2, (n,), generator=g)
        x1 = (2 * b1 - 1).float()[:, None] + 0.05 * torch.randn(n, 1, generator=g)
        x2 = (2 * b2 - 1).float()[:, None] + 0.05 * torch.randn(n, 1, generator=g)
        y = torch.nn.functional.one_hot(b1 ^ b2, 2).float()
        return {"both": (torch.cat([x1, y], 1), torch.cat([x2, y], 1)), "first": (torch.cat([x1, y], 1), x2),
                "none": (x1, x2)}

    for _ in range(250):
        b = batch()
        total = sum(infonce_lower_bound(crit[k], *b[k]) for k in crit)
        opt.zero_grad()
        (-total).backward()
        opt.step()
    with torch.no_grad():
        est = {k: sum(float(infonce_lower_bound(crit[k], *bb[k])) for bb in [batch(256) for _ in range(4)]) / 4
               for k in crit}
    assert est["both"] == pytest.approx(math.log(4), abs=0.12)
    assert est["first"] == pytest.approx(math.log(2), abs=0.12)
    assert abs(est["none"]) < 0.05


@pytest.mark.parametrize("n", [2, 7])
def test_score_functions_on_the_shared_bounds_match_loops(n):
    # the score-level functions now delegate to mmib.info.bounds (T read as scores of (x, y) = (b, a)); the numbers
    # must be FactorCL's own formulas, checked here on raw score matrices against the float64 loops
    g = torch.Generator().manual_seed(n)
    t = 3.0 * torch.randn(n, n, generator=g, dtype=torch.float64)
    tl = t.tolist()
    assert float(infonce_from_scores(t)) == pytest.approx(ref_infonce(tl), rel=1e-10)
    for off in (False, True):
        assert float(nce_club_from_scores(t, off)) == pytest.approx(ref_club(tl, off), rel=1e-10, abs=1e-12)
    # the softmax runs over a_j for a fixed b_i (rows of T), not over columns
    if n > 2:
        assert float(infonce_from_scores(t)) != pytest.approx(ref_infonce(t.T.tolist()), rel=1e-6)


def test_single_sample_and_non_finite_scores():
    t = torch.tensor([[2.5]], dtype=torch.float64, requires_grad=True)
    v = infonce_from_scores(t)
    assert float(v) == 0.0 and float(nce_club_from_scores(t)) == 0.0
    (g,) = torch.autograd.grad(v, t)
    assert float(g) == 0.0
    with pytest.raises(ValueError, match="off-diagonal.*N >= 2"):
        nce_club_from_scores(t, True)
    bad = torch.zeros(3, 3, dtype=torch.float64)
    bad[0, 1] = float("nan")
    with pytest.raises(ValueError, match="scores contains NaN or inf"):
        infonce_from_scores(bad)
    with pytest.raises(ValueError, match="square 2-D tensor"):
        nce_club_from_scores(torch.zeros(2, 3))
