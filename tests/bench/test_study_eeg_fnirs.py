"""The EEG + fNIRS study protocols (mmib.bench.study_eeg_fnirs): probes, the hand-made-feature ceiling, the R/U/S
checks with their positive controls, and the former study script's analyses."""

import numpy as np
import pytest
import torch

import mmib.bench.study_eeg_fnirs as study
from mmib.bench.study_eeg_fnirs import ceiling, checks, probes
from mmib.errors import MMIBError, UnknownNameError
from mmib.eval.protocols import PROTOCOLS


def test_protocols_are_registered():
    for name in ("eeg_fnirs_ceiling", "eeg_fnirs_checks", "eeg_fnirs_done", "eeg_fnirs_analyses"):
        assert PROTOCOLS[name] is getattr(study, name)


def test_linear_probe_chooses_the_regularization_on_val_and_scores_test():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(0)

    def split(n):
        x = rng.standard_normal((n, 20))
        y = (x[:, 0] + 0.8 * rng.standard_normal(n) > 0).astype(np.int64)
        return x, y

    xs, ys = zip(*(split(n) for n in (60, 200, 300)))
    x, y = dict(zip(("train", "val", "test"), xs)), dict(zip(("train", "val", "test"), ys))
    f = probes._linear_probe(x, y, "classification")
    vals = {}
    mu, sd = x["train"].mean(0), x["train"].std(0)
    for c in (0.01, 0.1, 1.0, 10.0, 100.0):  # the reference: sklearn by hand for every C
        def z(a):
            return np.clip((a - mu) / sd, -5, 5)

        m = LogisticRegression(C=c, max_iter=5000).fit(z(x["train"]), y["train"])
        vals[c] = (balanced_accuracy_score(y["val"], m.predict(z(x["val"]))),
                   balanced_accuracy_score(y["test"], m.predict(z(x["test"]))))
    best = max(vals, key=lambda c: vals[c][0])
    assert f.reg == best and f.val == pytest.approx(vals[best][0]) and f.test == pytest.approx(vals[best][1])
    # regression: ridge, R² on test
    yr = {s: 2.0 * x[s][:, 1] + 0.1 * rng.standard_normal(len(x[s])) for s in x}
    fr = probes._linear_probe(x, yr, "regression")
    assert fr.test > 0.95


def test_pool_of_token_outputs():
    t = torch.arange(24, dtype=torch.float32).reshape(2, 3, 4)
    p = probes._pool(t)
    assert p.shape == (2, 8)
    assert np.allclose(p[:, :4], t.mean(1).numpy()) and np.allclose(p[:, 4:], t.amax(1).numpy())
    assert probes._pool(torch.ones(5, 7)).shape == (5, 7)


# ------------------------------------------------------------------------------------------ on a small simulation
@pytest.fixture(scope="module")
def sim_dm():
    pytest.importorskip("mne")
    pytest.importorskip("nilearn")
    pytest.importorskip("neurokit2")
    from mmib.data.datamodule import MultimodalDataModule
    from mmib.data.registry import build_dataset

    ds = build_dataset("eeg_fnirs_sim", n_subjects=6, trials_per_subject=20, seed=5)
    return MultimodalDataModule(ds, seed=0, val_fraction=0.2, test_fraction=0.2)


def _rus(spec):
    from mmib.config import compose_config, to_container
    from mmib.methods.registry import build_method

    cfg = to_container(compose_config(["method=rus", "data=eeg_fnirs_sim"]))
    torch.manual_seed(0)
    return build_method("rus", spec, cfg["method"], cfg["encoder"]).eval()


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


def test_protocols_refuse_data_without_the_simulator_latents():
    from mmib.data.datamodule import MultimodalDataModule
    from mmib.data.synthetic.rus import make_rus
    from mmib.eval.protocols import EvalContext

    ds = make_rus(n_samples=60, dim=32)
    ctx = EvalContext(method=None, dm=MultimodalDataModule(ds, seed=0), seed=0)
    with pytest.raises(MMIBError, match="eeg|latents"):
        PROTOCOLS["eeg_fnirs_ceiling"](ctx, {})
