"""mmib.bench.study_eeg_fnirs.analyses (``eeg_fnirs_analyses``): for an R/U/S model, each component norm's Spearman
rho with A, EEG -> fNIRS retrieval with the R heads and the mean |cos| between components, each against a direct
computation on the known components; the options are checked before anything runs."""

import numpy as np
import pytest
from scipy.stats import spearmanr

from mmib.bench.study_eeg_fnirs import probes
from mmib.errors import UnknownNameError
from mmib.eval.protocols import PROTOCOLS


def test_rus_rows_against_a_direct_computation(fake_study):
    ctx, lat, _ = fake_study("rus")
    out = PROTOCOLS["eeg_fnirs_analyses"](ctx, {"mlp": False})
    rows = {r["id"]: r for r in out["rows"]}
    assert out["options"] == {"mlp_targets": ["synergy", "tau", "efficiency"], "mlp": False}
    test = np.arange(240, 300)
    task = test[lat["e"][test] == 1]
    comps = {k: v.numpy().astype(np.float64) for k, v in ctx.method.comps.items()}
    for c in probes.RUS_COMPONENTS:
        want = spearmanr(np.linalg.norm(comps[c][task], axis=1), lat["A"][task]).statistic
        assert rows[f"norm-vs-A/{c}"]["metrics"]["score"] == pytest.approx(want, abs=1e-12)
    assert rows["norm-vs-A/U_fnirs"]["metrics"]["score"] > 0.8  # ‖Z_U_fnirs‖ grows with A by construction
    # the fake's EEG and fNIRS embeddings of a row are the same unit vector: every query finds its row
    assert rows["retrieval/eeg->fnirs (Z_R) R@1"]["metrics"]["score"] == 1.0
    assert rows["retrieval/eeg->fnirs (Z_R) R@5"]["chance"] == {"score": 5 / 60}
    for i, a in enumerate(probes.RUS_COMPONENTS):
        for b in probes.RUS_COMPONENTS[i + 1:]:
            ua = comps[a][test] / np.linalg.norm(comps[a][test], axis=1, keepdims=True)
            ub = comps[b][test] / np.linalg.norm(comps[b][test], axis=1, keepdims=True)
            want = np.abs((ua * ub).sum(1)).mean()
            assert rows[f"abs-cos/{a}|{b}"]["metrics"]["score"] == pytest.approx(want, rel=1e-5), (a, b)
    cos = {k: r["metrics"]["score"] for k, r in rows.items() if k.startswith("abs-cos/")}
    assert cos["abs-cos/R_eeg|R_fnirs"] > 0.6 > cos["abs-cos/R_eeg|S"]  # e the same way; other coordinates
    assert len(rows) == 5 + 2 + 10


def test_options_are_checked_first():
    with pytest.raises(UnknownNameError, match=r"unknown target of eeg_fnirs_analyses.mlp_targets 'syn'; did you "
                                               r"mean 'synergy'"):
        PROTOCOLS["eeg_fnirs_analyses"](None, {"mlp_targets": ["syn"]})
    with pytest.raises(UnknownNameError, match="eeg_fnirs_analyses"):
        PROTOCOLS["eeg_fnirs_analyses"](None, {"mlp_layers": 3})


def test_a_method_without_components_gets_the_mlp_rows_only(fake_study, monkeypatch):
    from types import SimpleNamespace

    import mmib.eval.probe as probe_mod

    ctx, lat, _ = fake_study(SimpleNamespace(name="clip"))
    feats = np.random.default_rng(2).normal(size=(300, 4))
    order = np.random.default_rng(3).permutation(60)  # ctx.features keeps its own order; the protocol sorts it back
    ctx.dm.indices["test"] = ctx.dm.indices["test"][order]
    ctx.features = lambda split, mods, reps: SimpleNamespace(features={"concat": feats[ctx.dm.indices[split]]})
    seen = []

    def fake_fit(xtr, ytr, xva, yva, xte, yte, task, n_classes, cfg):
        seen.append((xtr, ytr, xte, yte, task, n_classes, cfg.kind))
        return SimpleNamespace(metrics={"balanced_accuracy": 0.75, "r2": 0.5})

    monkeypatch.setattr(probe_mod, "fit_probe", fake_fit)
    out = PROTOCOLS["eeg_fnirs_analyses"](ctx, {"mlp_targets": ["synergy", "tau"]})
    assert [(r["id"], r["metrics"]["score"]) for r in out["rows"]] == [("mlp/concat/synergy", 0.75),
                                                                      ("mlp/concat/tau", 0.5)]
    xtr, ytr, xte, yte, task, n_classes, kind = seen[0]
    train_rows = np.arange(180)[lat["e"][:180] == 1]
    test_rows = np.arange(240, 300)[lat["e"][240:] == 1]
    np.testing.assert_array_equal(xtr, feats[train_rows]) and np.testing.assert_array_equal(ytr, lat["synergy"][train_rows])
    np.testing.assert_array_equal(xte, feats[test_rows])  # aligned with the sorted test rows
    np.testing.assert_array_equal(yte, lat["synergy"][test_rows])
    assert (task, n_classes, kind) == ("classification", 2, "mlp")
    assert seen[1][4:6] == ("regression", None)
    assert out["rows"][0]["chance"] == {"score": 0.5}
