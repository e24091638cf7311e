"""mmib.bench.study_eeg_fnirs.ceiling (``eeg_fnirs_ceiling``): per latent, the candidate feature set chosen on val
and scored on test, per scope, with the XOR of the G and A decoders for the synergy; on feature groups built from known
latents (fast) and on a small simulation (slow)."""

import functools

import numpy as np
import pytest

from mmib.bench.study_eeg_fnirs import ceiling, probes
from mmib.errors import MMIBError, UnknownNameError
from mmib.eval.protocols import PROTOCOLS


@pytest.fixture()
def quick(monkeypatch):
    """Four latents (k, A, G and the synergy built from them) and two regularization strengths: the selection logic
    is the module's, the number of scikit-learn fits small."""
    monkeypatch.setattr(ceiling, "CANDIDATES", {t: ceiling.CANDIDATES[t] for t in ("k", "A", "G", "synergy")})
    monkeypatch.setattr(ceiling, "linear_probe", functools.partial(probes.linear_probe, grid=(0.1, 10.0)))


def test_the_ceiling_is_the_best_candidate_on_val_and_each_latent_sits_where_it_was_put(fake_study, quick):
    ctx, lat, _ = fake_study()
    res = ceiling.compute_ceiling(ctx)
    assert ceiling.compute_ceiling(ctx) is res  # computed once per evaluation
    idx = probes.split_indices_of(ctx)
    for target, scopes in ceiling.CANDIDATES.items():
        rows = probes.rows_for(lat, target, idx)
        assert res["n_test"][target] == len(rows["test"])
        assert res["chance"][target] == probes.chance_level(probes.TARGETS[target][0], lat[target][rows["train"]])
        for scope in ("eeg", "fnirs", "both", "all"):
            cands = {k: f for k, f in res["candidates"].items()
                     if k[0] == target and (scope == "all" or k[1] == scope)}
            sc, name, f = res["best"][(target, scope)]
            assert f is cands[(target, sc, name)] and f.val == max(c.val for c in cands.values())
        assert {k[2] for k in res["candidates"] if k[0] == target and k[1] == "eeg"} == \
            {"+".join(g) for g in scopes["eeg"]}
    score = {k: v[2].test for k, v in res["best"].items()}
    assert score[("k", "eeg")] > 0.9 and score[("k", "fnirs")] < 0.55  # k: EEG band power only (chance 1/3)
    assert score[("A", "fnirs")] > 0.85 and score[("G", "eeg")] > 0.85 and score[("A", "eeg")] < 0.7
    # the XOR candidate: the parity of the chosen G (EEG) and A (fNIRS) decoders' decisions
    g = res["best"][("G", "eeg")][2]
    a = res["best"][("A", "fnirs")][2]
    xor = res["candidates"][("synergy", "both", "XOR of G and A decoders")]
    for s in ("train", "val", "test"):
        np.testing.assert_array_equal(xor.pred[s], (g.pred[s] + a.pred[s]) % 2)
    assert xor.test == pytest.approx(probes.probe_score(lat["synergy"][probes.rows_for(lat, "synergy", idx)["test"]],
                                                   xor.pred["test"], "classification"))
    assert np.isnan(xor.reg) and score[("synergy", "eeg")] < 0.7 and score[("synergy", "all")] > 0.75

    # the protocol's rows: the chosen candidate per scope, then (by default) every candidate
    out = PROTOCOLS["eeg_fnirs_ceiling"](ctx, {"candidates": False})
    assert out["protocol"] == "eeg_fnirs_ceiling" and out["primary_metric"] == "score"
    assert [r["id"] for r in out["rows"]] == [f"{rid}/{t}" for t in ceiling.CANDIDATES
                                              for rid in ("ceiling", "ceiling-eeg", "ceiling-fnirs")]
    for r in out["rows"]:
        scope = {"ceiling": "all", "ceiling-eeg": "eeg", "ceiling-fnirs": "fnirs"}[r["id"].split("/")[0]]
        sc, name, f = res["best"][(r["latent"], scope)]
        assert r["metrics"] == {"score": f.test} and r["val_score"] == f.val and r["features"] == f"{sc}: {name}"
        assert r["chance"] == {"score": res["chance"][r["latent"]]} and r["n_test"] == res["n_test"][r["latent"]]
    every = PROTOCOLS["eeg_fnirs_ceiling"](ctx, {})
    assert len(every["rows"]) == len(out["rows"]) + len(res["candidates"])
    with pytest.raises(UnknownNameError, match="eeg_fnirs_ceiling"):
        PROTOCOLS["eeg_fnirs_ceiling"](ctx, {"nope": 1})


def test_feature_groups_need_signals_with_rates_and_channels(fake_study):
    from types import SimpleNamespace

    ctx, _, _ = fake_study()
    ctx._cache.clear()
    ctx.spec.modalities = (SimpleNamespace(name="eeg", kind="vector", rate=None, channels=None),)
    with pytest.raises(MMIBError, match="modality 'eeg' must be a signal with a rate and channel names"):
        ceiling.feature_groups(ctx)


@pytest.mark.slow
def test_ceiling_on_a_small_simulation(sim_dm):
    from mmib.eval.protocols import EvalContext

    ctx = EvalContext(method=None, dm=sim_dm, seed=0)
    res = PROTOCOLS["eeg_fnirs_ceiling"](ctx, {})
    rows = {r["id"]: r for r in res["rows"]}
    for t in probes.TARGETS:
        for rid in ("ceiling", "ceiling-eeg", "ceiling-fnirs"):
            assert f"{rid}/{t}" in rows
    # what each modality holds by construction: k (the rhythm) only in EEG, the event in both (one test subject of
    # 20 trials here: loose bounds)
    assert rows["ceiling-eeg/k"]["metrics"]["score"] >= 0.9
    assert rows["ceiling-fnirs/k"]["metrics"]["score"] <= 0.75
    assert rows["ceiling-eeg/e"]["metrics"]["score"] >= 0.65 and rows["ceiling-fnirs/e"]["metrics"]["score"] >= 0.75
    # the ceiling is the candidate with the best val score, its test score reported
    ceil = ceiling.compute_ceiling(ctx)
    for t in probes.TARGETS:
        cands = [(k, f) for k, f in ceil["candidates"].items() if k[0] == t]
        k, f = max(cands, key=lambda kv: kv[1].val)
        assert rows[f"ceiling/{t}"]["metrics"]["score"] == pytest.approx(f.test)
    # the XOR candidate is the parity of the chosen G (EEG) and A (fNIRS) decoders' decisions
    from sklearn.metrics import balanced_accuracy_score

    g = max(((k, f) for k, f in ceil["candidates"].items() if k[:2] == ("G", "eeg")), key=lambda kv: kv[1].val)[1]
    a = max(((k, f) for k, f in ceil["candidates"].items() if k[:2] == ("A", "fnirs")), key=lambda kv: kv[1].val)[1]
    idx = sim_dm.indices["test"]
    lat = {k: v.numpy() for k, v in sim_dm.dataset.latents.items()}
    task = idx[lat["e"][idx] == 1]
    want = balanced_accuracy_score(lat["synergy"][task], (g.pred["test"] + a.pred["test"]) % 2)
    assert rows["candidate/both:XOR of G and A decoders/synergy"]["metrics"]["score"] == pytest.approx(want)
    with pytest.raises(UnknownNameError, match="eeg_fnirs_ceiling"):
        PROTOCOLS["eeg_fnirs_ceiling"](ctx, {"nope": 1})


def test_protocols_refuse_data_without_the_simulator_latents():
    from mmib.data.datamodule import MultimodalDataModule
    from mmib.data.synthetic.rus import make_rus
    from mmib.eval.protocols import EvalContext

    ds = make_rus(n_samples=60, dim=32)
    ctx = EvalContext(method=None, dm=MultimodalDataModule(ds, seed=0), seed=0)
    with pytest.raises(MMIBError, match="eeg|latents"):
        PROTOCOLS["eeg_fnirs_ceiling"](ctx, {})
