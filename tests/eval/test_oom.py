"""OOM evaluation against brute-force references, through a COX method built on the testbed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmib.errors import MMIBError
from mmib.eval.oom import (
    agreement_accuracy,
    best_permutation_accuracy,
    evaluate_oom,
    mapping_mmd,
    oom_accuracy,
    oom_retrieval,
    recall_at_k,
)


def test_recall_at_k_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(40, 40, generator=g)
    got = recall_at_k(s, (1, 3, 40))
    for k in (1, 3):
        hits = [sum(1 for j in range(40) if s[i, j] >= s[i, i]) - 1 < k for i in range(40)]
        assert got[k] == pytest.approx(np.mean(hits))
    assert got[40] == 1.0
    assert recall_at_k(torch.eye(5), (1,))[1] == 1.0
    assert recall_at_k(torch.ones(4, 4), (1,))[1] == 0.0  # ties count against the correct candidate
    with pytest.raises(MMIBError, match="square"):
        recall_at_k(torch.zeros(2, 3))


def test_oom_metrics_match_manual_computation(trained_cox):
    meth, dm = trained_cox
    b = dm.split_batch("test")
    with torch.no_grad():
        z = meth.oom_encoder(b["x"]["oom"])
        pred = meth.oom_head(z).argmax(1)
        stars = [meth.optimal_heads[m](z).argmax(1) for m in ("im1", "im2")]
        maps = meth.connections["im1"](meth.perceive("im1", b["x"]["im1"]), sample=False)[0]
    assert oom_accuracy(meth, b) == pytest.approx(float((pred == b["y"]).float().mean()))
    agree = stars[0] == stars[1]
    ad = agreement_accuracy(meth, b)
    assert ad["frac_disagree"] == pytest.approx(float((~agree).float().mean()))
    if bool(agree.any()):
        assert ad["acc_agree"] == pytest.approx(float((pred == b["y"])[agree].float().mean()))
    zn = torch.nn.functional.normalize(z, dim=1)
    mn = torch.nn.functional.normalize(maps, dim=1)
    r = oom_retrieval(meth, b, ks=(1, 5))
    assert r["R@1/oom->im1"] == pytest.approx(recall_at_k(zn @ mn.T, (1,))[1])
    assert r["R@5/im1->oom"] == pytest.approx(recall_at_k(mn @ zn.T, (5,))[5])
    assert r["gallery_size"] == 60.0


def test_mapping_mmd_and_evaluate_oom(trained_cox):
    meth, dm = trained_cox
    a = mapping_mmd(meth, dm.split_batch("train"), dm.split_batch("test"), seed=1)
    b = mapping_mmd(meth, dm.split_batch("train"), dm.split_batch("test"), seed=1)
    assert a == b and set(a) == {"mmd/im1", "mmd/im2"} and all(v >= -1e-6 for v in a.values())
    out = evaluate_oom(meth, dm)
    for k in ("accuracy", "R@1/oom->im", "R@5/im->oom", "acc_agree", "hstar_acc/im1", "mmd/im2"):
        assert k in out


def test_oom_accuracy_needs_oom_rows(trained_cox):
    meth, dm = trained_cox
    b = dm.split_batch("train")
    im_only = {k: ({m: v[~b["mask"]["oom"]] for m, v in val.items()} if isinstance(val, dict) else
                   val[~b["mask"]["oom"]]) for k, val in b.items()}
    with pytest.raises(MMIBError, match="no row"):
        oom_accuracy(meth, im_only)


def test_best_permutation_accuracy_matches_brute_force():
    import itertools

    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        y = torch.randint(0, 4, (30,), generator=g)
        pred = torch.randint(0, 4, (30,), generator=g)
        brute = max(float((torch.tensor(p)[pred] == y).double().mean()) for p in itertools.permutations(range(4)))
        assert best_permutation_accuracy(pred, y) == pytest.approx(brute, abs=1e-12)
    # a perfect clustering with permuted names: plain accuracy 0 (a derangement), best-permutation accuracy 1
    y = torch.arange(5).repeat(4)
    pred = (y + 1) % 5
    assert float((pred == y).float().mean()) == 0.0 and best_permutation_accuracy(pred, y) == 1.0
    with pytest.raises(MMIBError, match="equal non-empty"):
        best_permutation_accuracy(torch.zeros(3), torch.zeros(4))
