"""COX's exploration term (Eq. 13) as implemented pulls every disagreement posterior toward one common target, the
normalized geometric mean of the anchors' posteriors (issue 19, docs/results/controls.md, section "COX"): checked on
the method's own term (``COXMethod.anchor_kl`` with the default options) by minimizing it over free D posteriors."""

import pytest
import torch

from mmib.bench.study_cox_controls import geometric_target, pull_stats


def _anchors(n_a=9, c=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 3.0 * torch.randn(n_a, c, generator=g, dtype=torch.float64)


def test_term_is_a_kl_to_the_geometric_mean_up_to_a_constant():
    # sum_a KL(p_d || p_a) = |A| [-H(p_d) - sum_c p_dc mean_a log p_ac] = |A| KL(p_d || g) - |A| log Z, exactly
    la = _anchors()
    logp_a = torch.log_softmax(la, 1)
    log_z = torch.logsumexp(logp_a.mean(0), 0)
    logg = geometric_target(logp_a)
    for seed in range(5):
        ld = torch.randn(1, 5, generator=torch.Generator().manual_seed(seed + 10), dtype=torch.float64)
        logp_d = torch.log_softmax(ld, 1)[0]
        direct = sum(float((logp_d.exp() * (logp_d - lp)).sum()) for lp in logp_a)
        via_h = len(la) * float((logp_d.exp() * logp_d).sum() - (logp_d.exp() * logp_a.mean(0)).sum())
        via_g = len(la) * float((logp_d.exp() * (logp_d - logg)).sum() - log_z)
        assert direct == pytest.approx(via_h, rel=1e-12) and direct == pytest.approx(via_g, rel=1e-12)


def test_minimizer_of_the_implemented_term_is_the_closed_form(small_cox_sim, cox_method):
    method = cox_method(small_cox_sim(seed=0))  # the term with COX's default options (Eq. 13, 1/(|A|+|D|))
    la = _anchors()
    target = torch.softmax(torch.log_softmax(la, 1).mean(0), 0)
    # six disagreement rows with very different starting posteriors (their "inputs"): one free logit vector each
    ld = (4.0 * torch.randn(6, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)).requires_grad_(True)
    opt = torch.optim.LBFGS([ld], lr=1.0, max_iter=2000, tolerance_grad=1e-14, tolerance_change=1e-16,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = method.anchor_kl(ld, la).loss
        loss.backward()
        return loss

    for _ in range(5):
        opt.step(closure)
    p = torch.softmax(ld.detach(), 1)
    assert float((p - target).abs().max()) < 1e-6  # every row: the same class-blind target, whatever its start
    assert float(torch.softmax(geometric_target(torch.log_softmax(la, 1)), 0).sub(target).abs().max()) < 1e-15


def test_the_target_sharpens_toward_the_anchors_majority_class():
    # confident anchors, 70 % of class 2: the geometric mean is nearly one-hot on class 2 (not the 70/30 mixture);
    # balanced confident anchors give a flat target
    eps = 1e-3
    conf = torch.full((10, 4), eps / 3, dtype=torch.float64)
    labels = torch.tensor([2] * 7 + [0, 1, 3])
    conf[torch.arange(10), labels] = 1 - eps
    g = geometric_target(conf.log()).exp()
    assert float(g[2]) > 0.9
    bal = torch.full((8, 4), eps / 3, dtype=torch.float64)
    bal[torch.arange(8), torch.arange(8) % 4] = 1 - eps
    assert float((geometric_target(bal.log()).exp() - 0.25).abs().max()) < 1e-12


def test_pull_stats_on_a_known_case():
    logits = torch.tensor([[5.0, 0, 0], [5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0]])
    y = torch.tensor([0, 0, 2, 2])
    in_d = torch.tensor([False, False, True, True])
    s = pull_stats(logits, y, in_d, ~in_d)
    assert s["acc_A"] == 1.0 and s["acc_D"] == 0.5 and s["frac_D"] == 0.5
    assert s["gmax_pred_share_D"] == 0.0 and s["gmax_true_share_D"] == 0.0  # argmax g = class 0, D has none
    assert s["kl_A_to_g"] == pytest.approx(0.0, abs=1e-12) and s["kl_D_to_g"] > 1.0
    assert s["acc_D_rest"] == 0.5 and s["acc_D_gmax"] != s["acc_D_gmax"]  # no D row of class argmax g: NaN
    empty = pull_stats(logits, y, in_d, torch.zeros(4, dtype=torch.bool))
    assert empty["kl_D_to_g"] != empty["kl_D_to_g"] and empty["acc_D"] == 0.5  # no anchors: NaN, not 0
