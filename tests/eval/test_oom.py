"""OOM evaluation against brute-force references, through a COX method built on the testbed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmib.data.datamodule import MultimodalDataModule
from mmib.data.synthetic.cox_sim import make_cox_sim
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
from mmib.methods.registry import build_method


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


@pytest.fixture(scope="module")
def trained():
    ds = make_cox_sim(n_im=150, n_oom=150, n_val=20, n_test=60, seed=0)
    dm = MultimodalDataModule(ds, batch_size=32, split_by="predefined")
    meth = build_method("cox", ds.spec, {"name": "cox", "head_fit": {"steps": 20, "lr": 0.05}},
                        {"vector": {"type": "mlp", "hidden": [16]}})
    meth.build_cache(dm.split_batch("train"), len(ds))
    meth.refresh(0)
    meth.eval()
    return meth, dm


def test_oom_metrics_match_manual_computation(trained):
    meth, dm = trained
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


def test_mapping_mmd_and_evaluate_oom(trained):
    meth, dm = trained
    a = mapping_mmd(meth, dm.split_batch("train"), dm.split_batch("test"), seed=1)
    b = mapping_mmd(meth, dm.split_batch("train"), dm.split_batch("test"), seed=1)
    assert a == b and set(a) == {"mmd/im1", "mmd/im2"} and all(v >= -1e-6 for v in a.values())
    out = evaluate_oom(meth, dm)
    for k in ("accuracy", "R@1/oom->im", "R@5/im->oom", "acc_agree", "hstar_acc/im1", "mmd/im2"):
        assert k in out


def test_oom_accuracy_needs_oom_rows(trained):
    meth, dm = trained
    b = dm.split_batch("train")
    im_only = {k: ({m: v[~b["mask"]["oom"]] for m, v in val.items()} if isinstance(val, dict) else
                   val[~b["mask"]["oom"]]) for k, val in b.items()}
    with pytest.raises(MMIBError, match="no row"):
        oom_accuracy(meth, im_only)


def test_oom_protocol_rows_chance_and_report(trained, tmp_path):
    from mmib.eval.evaluate import evaluate
    from mmib.eval.report import render_markdown

    meth, dm = trained
    res = evaluate(meth, dm, [{"oom": {"ks": [1, 5]}}], out_dir=tmp_path, progress=False)
    p = res["protocols"]["oom"]
    (row,) = p["rows"]
    direct = evaluate_oom(meth, dm)
    assert row["metrics"]["accuracy"] == direct["accuracy"]
    assert row["metrics"]["R@1/oom->im"] == direct["R@1/oom->im"]
    gallery = direct["gallery_size"]
    assert row["chance"]["R@5/im->oom"] == pytest.approx(5 / gallery)
    assert row["chance"]["accuracy"] == pytest.approx(1 / dm.spec.n_classes)
    md = render_markdown(res)
    assert "out-of-modal generalization" in md and "R@1/oom->im" in md
    with pytest.raises(MMIBError, match=r"unknown option of protocol 'oom' 'k'; did you mean 'ks'\? valid: ks, split"):
        evaluate(meth, dm, [{"oom": {"k": 1}}], out_dir=tmp_path / "bad", progress=False)


def test_oom_protocol_empty_agreement_set_is_undefined_not_an_error(trained, tmp_path, monkeypatch):
    # every IM head agreeing leaves the disagreement set empty: its accuracy is NaN (undefined) and said so, while a
    # NaN anywhere else is still refused
    import mmib.eval.oom as oom_mod
    from mmib.eval.evaluate import evaluate

    meth, dm = trained
    real = oom_mod.evaluate_oom
    monkeypatch.setattr(oom_mod, "evaluate_oom", lambda *a, **k: {**real(*a, **k), "acc_disagree": float("nan"),
                                                                  "frac_disagree": 0.0})
    res = evaluate(meth, dm, [{"oom": {}}], out_dir=tmp_path / "a", progress=False)
    p = res["protocols"]["oom"]
    assert np.isnan(p["rows"][0]["metrics"]["acc_disagree"])
    assert any("acc_disagree undefined" in n and "disagreement set" in n for n in p["notes"])
    monkeypatch.setattr(oom_mod, "evaluate_oom", lambda *a, **k: {**real(*a, **k), "accuracy": float("nan")})
    with pytest.raises(MMIBError, match="oom protocol: metric 'accuracy' is NaN"):
        evaluate(meth, dm, [{"oom": {}}], out_dir=tmp_path / "b", progress=False)


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
