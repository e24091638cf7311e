"""mmib.bench.study_eeg_fnirs.checks (``eeg_fnirs_checks``, ``eeg_fnirs_done``): every off-target check beside its
positive control, pass / informative by the thresholds, the Done-when comparisons; on an R/U/S model with known
components and a leak (fast) and on a small simulation (slow)."""

import functools

import numpy as np
import pytest
import torch

from mmib.bench.study_eeg_fnirs import ceiling, checks, probes
from mmib.errors import UnknownNameError
from mmib.eval.protocols import PROTOCOLS


@pytest.fixture()
def quick(monkeypatch):
    """The latents the checks read, one regularization strength: the module's logic, few scikit-learn fits."""
    keep = ("e", "k", "A", "G", "tau", "synergy")
    monkeypatch.setattr(ceiling, "CANDIDATES", {t: ceiling.CANDIDATES[t] for t in keep})
    one = functools.partial(probes.linear_probe, grid=(1.0,))
    monkeypatch.setattr(ceiling, "linear_probe", one)
    monkeypatch.setattr(checks, "linear_probe", one)


def test_off_target_checks_and_done_rows_follow_their_thresholds(fake_study, quick):
    ctx, lat, _ = fake_study("rus")
    res = PROTOCOLS["eeg_fnirs_checks"](ctx, {})
    done = PROTOCOLS["eeg_fnirs_done"](ctx, {})
    assert res["primary_metric"] == done["primary_metric"] == "pass"
    assert "has no hidden(batch): positive controls from the hand-made features only" in res["notes"][0]
    ceil = ceiling.compute_ceiling(ctx)
    opt = checks.ChecksOptions()
    rows = {r["id"]: r for r in res["rows"]}
    assert list(rows) == [f"off-target/{c}->{t}" for c, (ts, _) in checks.OFF_TARGET.items() for t in ts]
    for (comp, (targets, scope)) in checks.OFF_TARGET.items():
        for t in targets:
            r = rows[f"off-target/{comp}->{t}"]
            m, chance = r["metrics"], ceil["chance"][t]
            assert r["chance"] == {"score": chance}
            control = ceil["best"][(t, "all" if scope == "both" else scope)][2].test
            assert m["control_features"] == control and np.isnan(m["control_hidden"])
            assert m["informative"] == float(control - chance >= opt.control_margin)
            assert m["pass"] == float(abs(m["score"] - chance) <= opt.off_target_tolerance)
    # by construction: U_fnirs carries e (a leak, decodable from the fNIRS features: an informative failure); the
    # rest carry nothing off-target (their scores: chance and sampling noise); A is not in the EEG features, so the
    # check of A from Z_U_eeg is uninformative
    assert rows["off-target/U_fnirs->e"]["metrics"]["pass"] == 0.0
    assert rows["off-target/U_fnirs->e"]["metrics"]["informative"] == 1.0
    leak = rows["off-target/U_fnirs->e"]["metrics"]["score"]
    assert leak > 0.95 and all(r["metrics"]["score"] < leak - 0.2 for k, r in rows.items() if "U_fnirs->e" not in k)
    assert rows["off-target/U_eeg->A"]["metrics"]["informative"] == 0.0
    assert rows["off-target/R_eeg->k"]["metrics"]["informative"] == 1.0
    d = {r["id"]: r["metrics"] for r in done["rows"]}
    for rid, m in d.items():
        assert m["pass"] == float(m["score"] >= m["threshold"]), rid
    assert d["done/S->synergy>=0.80"]["threshold"] == 0.8 and d["done/S->synergy>=0.80"]["pass"] == 1.0
    assert d["done/S->synergy>=ceiling-7"]["threshold"] == pytest.approx(ceil["best"][("synergy", "all")][2].test
                                                                        - 0.07)
    assert d["done/R_eeg->e>=ceiling_eeg-5"]["threshold"] == pytest.approx(ceil["best"][("e", "eeg")][2].test - 0.05)
    assert d["done/off-target (informative pairs)"]["pass"] == 0.0  # the leak is an informative pair
    informative = [r["metrics"]["pass"] for r in rows.values() if r["metrics"]["informative"]]
    assert d["done/off-target (informative pairs)"]["score"] == pytest.approx(np.mean(informative))
    # computed once per evaluation and options; other options: computed again
    assert PROTOCOLS["eeg_fnirs_checks"](ctx, {})["rows"] == res["rows"]
    strict = PROTOCOLS["eeg_fnirs_done"](ctx, {"synergy_min": 1.01})
    assert {r["id"]: r["metrics"]["pass"] for r in strict["rows"]}["done/S->synergy>=0.80"] == 0.0
    with pytest.raises(UnknownNameError, match="eeg_fnirs_checks"):
        PROTOCOLS["eeg_fnirs_checks"](ctx, {"tolerance": 0.2})


def test_a_method_without_rus_components_is_skipped_with_a_note(fake_study):
    from types import SimpleNamespace

    ctx, _, _ = fake_study(SimpleNamespace(name="clip"))
    for name in ("eeg_fnirs_checks", "eeg_fnirs_done"):
        res = PROTOCOLS[name](ctx, {})
        assert res["rows"] == [] and res["notes"] == ["skipped: method 'clip' has no components R_eeg, R_fnirs, "
                                                      "U_eeg, U_fnirs, S"]


def _rus(spec):
    from mmib.config import compose_config, to_container
    from mmib.methods.registry import build_method

    cfg = to_container(compose_config(["method=rus", "data=eeg_fnirs_sim"]))
    torch.manual_seed(0)
    return build_method("rus", spec, cfg["method"], cfg["encoder"]).eval()


@pytest.mark.slow
def test_checks_and_analyses_with_an_rus_model(sim_dm):
    from mmib.eval.protocols import EvalContext

    method = _rus(sim_dm.spec)
    ctx = EvalContext(method=method, dm=sim_dm, seed=0)
    res = PROTOCOLS["eeg_fnirs_checks"](ctx, {})
    rows = {r["id"]: r for r in res["rows"]}
    assert all(r.startswith("off-target/") for r in rows)
    rows.update({r["id"]: r for r in PROTOCOLS["eeg_fnirs_done"](ctx, {})["rows"]})
    pairs = [f"off-target/{c}->{t}" for c, (ts, _) in checks.OFF_TARGET.items() for t in ts]
    assert all(p in rows for p in pairs)
    for p in pairs:
        m = rows[p]["metrics"]
        assert set(m) == {"score", "control_hidden", "control_features", "informative", "pass"}
        if callable(getattr(method, "hidden", None)):
            assert np.isfinite(m["control_hidden"])
    # A is not in the EEG and k not in the fNIRS (by construction): those checks are uninformative; k from EEG is
    # decodable (the control of Z_R_eeg -> k), so that check is informative
    assert rows["off-target/U_eeg->A"]["metrics"]["informative"] == 0.0
    assert rows["off-target/U_fnirs->k"]["metrics"]["informative"] == 0.0
    assert rows["off-target/R_eeg->k"]["metrics"]["informative"] == 1.0
    for rid in ("done/S->synergy>=0.80", "done/S->synergy>=ceiling-7", "done/S->synergy>=RU+10",
                "done/S->tau>=0.8*ceiling", "done/R_eeg->e>=ceiling_eeg-5", "done/R_fnirs->e>=ceiling_fnirs-5"):
        m = rows[rid]["metrics"]
        assert m["pass"] == float(m["score"] >= m["threshold"])
    assert rows["done/S->synergy>=0.80"]["metrics"]["threshold"] == 0.8
    an = PROTOCOLS["eeg_fnirs_analyses"](ctx, {"mlp_targets": ["tau"]})
    ids = {r["id"] for r in an["rows"]}
    assert {"mlp/S/tau", "mlp/RU/tau", "norm-vs-A/U_fnirs", "retrieval/eeg->fnirs (Z_R) R@1", "abs-cos/R_eeg|S"} <= ids
    assert all(set(r["metrics"]) == {"score"} for r in an["rows"])
    with pytest.raises(UnknownNameError, match="mlp_targets"):
        PROTOCOLS["eeg_fnirs_analyses"](ctx, {"mlp_targets": ["nope"]})


@pytest.mark.slow
def test_checks_skip_methods_without_rus_components(sim_dm):
    from mmib.config import compose_config, to_container
    from mmib.eval.protocols import EvalContext
    from mmib.methods.registry import build_method

    cfg = to_container(compose_config(["method=cross", "data=eeg_fnirs_sim"]))
    method = build_method("cross", sim_dm.spec, cfg["method"], cfg["encoder"]).eval()
    ctx = EvalContext(method=method, dm=sim_dm, seed=0)
    for name in ("eeg_fnirs_checks", "eeg_fnirs_done"):
        res = PROTOCOLS[name](ctx, {})
        assert res["rows"] == [] and "skipped" in res["notes"][0]
    an = PROTOCOLS["eeg_fnirs_analyses"](ctx, {"mlp_targets": ["synergy"]})
    assert [r["id"] for r in an["rows"]] == ["mlp/concat/synergy"]
