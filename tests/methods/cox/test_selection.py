"""mmib.methods.cox.selection: the semi and unsup schedules' anchor and disagreement sets, the MMD warm-up
selection, the anchor pseudo-labels and the entropy diagnostics, and the linear head fit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch


# ------------------------------------------------------------------ schedules
def test_semi_and_unsup_schedules_select_sets(small_cox_sim, cox_method, cox_dm):
    ds = small_cox_sim(scenario="unsup", seed=0)
    meth = cox_method(ds, scenario="unsup", warmup_epochs=1)
    meth.build_cache(cox_dm(ds).split_batch("train"), len(ds))
    info = meth.refresh(0)
    assert meth.phase(0) == "warmup" and 0 < info["n_anchor"] <= 12  # T = 10% of 120 (fewer if |A| < T)
    info = meth.refresh(1)
    assert meth.phase(1) == "explore" and info["n_anchor"] == 12
    lab = meth._roles["label"]
    d = meth._roles["in_d"]
    assert not bool((d & (lab >= 0)).any())  # U-2: D excludes the emergent anchors
    assert bool((meth._roles["partner"][lab >= 0] >= 0).all())


def test_mmd_warmup_selection_fits_the_connection_before_eq14_and_literal_does_not(small_cox_sim, cox_method, cox_dm):
    ds = small_cox_sim(scenario="unsup", seed=0)
    changed = {}
    for sel in ("literal", "mmd"):
        meth = cox_method(ds, scenario="unsup", warmup_selection=sel, warmup_epochs=1)
        meth.build_cache(cox_dm(ds).split_batch("train"), len(ds))
        before = {k: v.clone() for k, v in meth.connections.state_dict().items()}
        info = meth.refresh(0)
        assert meth.phase(0) == "warmup" and info["n_anchor"] > 0
        changed[sel] = any(not torch.equal(before[k], v) for k, v in meth.connections.state_dict().items())
    assert changed == {"literal": False, "mmd": True}


# ------------------------------------------------------------------ evaluation-only diagnostics
def test_entropy_on_d_and_anchor_accuracy_diagnostics(small_cox_sim, cox_method, cox_dm):
    from mmib.eval.oom import anchor_label_accuracy, disagreement_entropy

    ds = small_cox_sim(scenario="unsup", seed=0)
    meth = cox_method(ds, scenario="unsup", warmup_epochs=1)
    train_b = cox_dm(ds).split_batch("train")
    meth.build_cache(train_b, len(ds))
    rows, labels = meth.anchor_pseudolabels()
    assert len(rows) == 0
    meth.refresh(0)
    rows, labels = meth.anchor_pseudolabels()
    assert len(rows) == meth.history[-1]["n_anchor"] > 0
    y_of = dict(zip(train_b["index"].tolist(), train_b["y"].tolist()))
    want = float(np.mean([y_of[r] == lab for r, lab in zip(rows.tolist(), labels.tolist())]))
    got = anchor_label_accuracy(meth, train_b)
    assert got["anchor_acc"] == pytest.approx(want) and got["n_anchor"] == len(rows)
    info = meth.refresh(1)  # explore: entropy of h^O on the training D, in nats, within [0, log C]
    assert 0.0 <= info["entropy_D"] <= math.log(10) + 1e-6
    ent = disagreement_entropy(meth, cox_dm(ds).split_batch("test"))
    for v in ent.values():
        assert math.isnan(v) or 0.0 <= v <= math.log(10) + 1e-6


def test_fit_linear_head_is_seeded_separates_separable_data_and_restores_flags():
    from mmib.methods.cox.selection import fit_linear_head

    g = torch.Generator().manual_seed(0)
    y = torch.arange(30) % 3
    centres = torch.tensor([[4.0, 0.0], [0.0, 4.0], [-4.0, -4.0]])
    x = centres[y] + 0.3 * torch.randn(30, 2, generator=g)
    a, b = torch.nn.Linear(2, 3), torch.nn.Linear(2, 3)
    a.weight.requires_grad_(False)
    assert fit_linear_head(a, x, y, steps=60, lr=0.1, seed=5) is a
    fit_linear_head(b, x, y, steps=60, lr=0.1, seed=5)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)  # seeded re-initialization
    assert bool((a(x).argmax(1) == y).all())
    assert not a.weight.requires_grad and a.bias.requires_grad and a.weight.grad is None
