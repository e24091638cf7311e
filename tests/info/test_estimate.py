"""mmib.info.estimate: estimate_mi's conditioning pairs, training batch and its errors, and the weight
average's warm-up."""

import math

import pytest
import torch

from mmib.info import (
    InfoNCEEstimator,
    correlated_gaussians,
    estimate_mi,
)

SMALL = {"critic": "concat", "critic_kwargs": {"hidden_dim": 64}, "lr": 5e-3, "train_batch_size": 64}  # fast


def test_estimate_mi_with_a_pair():
    x, y = correlated_gaussians(256, 2, 1.0, seed=0)
    lab = (torch.arange(256) % 2).float()
    kw = {"steps": 5, "batch_size": 16, "eval_batches": 2, **SMALL}
    # (c, c) is c: same critic sizes, initialization, batches and values
    r1 = estimate_mi(x, y, lab, method="nce_club", **kw)
    r2 = estimate_mi(x, y, (lab, lab), method="nce_club", **kw)
    assert r1.history == r2.history and r1.value == r2.value
    # per-side widths differ; same_condition groups by the joint rows, so continuous views have no groups
    cx, cy = torch.randn(256, 1), torch.randn(256, 3)
    r = estimate_mi(x, y, (cx, cy), method="infonce", negatives="batch", **kw)
    assert len(r.history) == 5 and math.isfinite(r.value)
    with pytest.raises(ValueError, match="no conditioning value occurs twice"):
        estimate_mi(x, y, (lab, cy), method="infonce", **kw)
    with pytest.raises(ValueError, match="CLUBEstimator: c_dim must be an integer"):
        estimate_mi(x, y, (cx, cy), method="club", **kw)


def test_weight_average_has_the_stated_warm_up():
    from mmib.info.estimate import averaged

    est = InfoNCEEstimator(2, 2, critic="bilinear")
    with torch.no_grad():
        est.critic.weight.zero_()
    avg = averaged(est, 0.99)
    ref = 0.0
    for t in range(1, 40):
        with torch.no_grad():
            est.critic.weight.fill_(float(t))
        avg.update_parameters(est)
        n = t - 1  # updates before this one
        ref = float(t) if n == 0 else ref + (1 - min(0.99, (1 + n) / (10 + n))) * (t - ref)
        assert abs(float(avg.module.critic.weight[0, 0].detach()) - ref) < 1e-4 * max(1.0, ref)
    assert averaged(est, 0.0) is None
    with pytest.raises(ValueError, match=r"ema must be a decay in \[0, 1\)"):
        averaged(est, 1.0)


def test_estimate_mi_training_batch_and_its_errors():
    x, y = correlated_gaussians(300, 2, 1.0, seed=0)
    r = estimate_mi(x, y, steps=3, batch_size=16, eval_batches=2, critic_kwargs={"hidden_dim": 8})
    assert len(r.history) == 3 and math.isfinite(r.value)
    from mmib.info.estimate import default_train_batch

    assert default_train_batch("infonce", "separable", 64, 300) == 300 and default_train_batch("club", "x", 64) == 512
    assert default_train_batch("nce_club", "concat", 64, 10_000) == 64  # O(N²) steps: the evaluation batch
    with pytest.raises(ValueError, match=r"train_batch_size must be an integer in \[2, 300\]"):
        estimate_mi(x, y, steps=3, batch_size=16, train_batch_size=301)
    with pytest.raises(ValueError, match="ema must be a decay"):
        estimate_mi(x, y, steps=3, batch_size=16, ema=-0.5, critic_kwargs={"hidden_dim": 8})


def test_nwj_and_mine_default_to_the_concatenation_critic_and_reach_the_truth():
    from mmib.info.estimate import DEFAULT_CRITIC, default_critic

    assert default_critic("nwj") == default_critic("mine") == "concat"
    assert default_critic("infonce") == default_critic("nce_club") == DEFAULT_CRITIC
    # with estimate_mi's defaults (the separable critic used to train these two far below zero), on 4 x 4 correlated
    # Gaussians with a true MI of 1 nat; small width and few steps to stay fast
    x, y = correlated_gaussians(2048, 4, 1.0, seed=0)
    for method in ("nwj", "mine"):
        r = estimate_mi(x, y, method=method, steps=400, critic_kwargs={"hidden_dim": 64}, eval_batches=8, seed=0)
        assert 0.6 < r.value < 1.3, (method, r.value)


def test_estimate_mi_trains_clubs_mlp_q_at_its_own_default_learning_rate(monkeypatch):
    from mmib.info.estimate import DEFAULT_CLUB_MLP_LR, DEFAULT_LR

    seen = []
    adam = torch.optim.Adam

    class Recording(adam):
        def __init__(self, params, lr, **kw):
            seen.append(lr)
            super().__init__(params, lr=lr, **kw)

    monkeypatch.setattr(torch.optim, "Adam", Recording)
    x, y = correlated_gaussians(128, 2, 1.0, seed=0)
    kw = {"steps": 1, "batch_size": 16, "eval_batches": 1, "club_hidden_dim": 8}
    estimate_mi(x, y, method="club", **kw)
    estimate_mi(x, y, method="club", club_q="linear", **kw)
    estimate_mi(x, y, method="infonce", steps=1, batch_size=16, eval_batches=1, critic_kwargs={"hidden_dim": 8})
    estimate_mi(x, y, method="club", lr=2e-3, **kw)
    assert seen == [DEFAULT_CLUB_MLP_LR, DEFAULT_LR, DEFAULT_LR, 2e-3]
    with pytest.raises(ValueError, match="lr must be a finite number > 0"):
        estimate_mi(x, y, method="club", lr=True, **kw)
