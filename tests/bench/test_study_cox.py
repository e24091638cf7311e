"""The COX study inside the packaged ``cox`` suite (mmib.bench.study_cox): the per-epoch OOMTrace callback, the
``oom_trace`` protocol that tables it over seeds, the curves drawn from the results, and the suite's settings."""

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from mmib.bench.study_cox import TRACE_FILE, OOMTrace, _derived, oom_trace, plot_traces, trace_series
from mmib.errors import MMIBError


def _write_trace(folder: Path, history):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / TRACE_FILE).write_text(json.dumps({"every_n_epochs": 1, "split": "test", "history": history}))


def test_derived_metrics_are_means_over_im_modalities():
    d = _derived({"epoch": 3.0, "phase": "explore", "acc_agree": 0.9, "acc_disagree": 0.4, "mmd/a": 0.01,
                  "mmd/b": 0.03, "hstar_acc/a": 0.5, "hstar_acc/b": 0.7})
    assert d["gap"] == pytest.approx(0.5)
    assert d["mmd"] == pytest.approx(0.02) and d["hstar_acc"] == pytest.approx(0.6)
    assert "phase" not in d


def test_oom_trace_protocol_rows_per_epoch(tmp_path):
    hist = [{"epoch": 1.0, "phase": "connect", "accuracy": 0.5, "acc_agree": 0.8, "acc_disagree": 0.3, "mmd/im1": 0.2},
            {"epoch": 2.0, "phase": "explore", "accuracy": 0.6, "acc_agree": 0.7, "acc_disagree": float("nan"),
             "mmd/im1": 0.1}]
    _write_trace(tmp_path, hist)
    res = oom_trace(SimpleNamespace(run_dir=tmp_path), {"metrics": ["accuracy", "gap", "mmd", "anchor_acc"]})
    assert [r["id"] for r in res["rows"]] == ["trace/epoch-01", "trace/epoch-02"]
    assert res["rows"][0]["label"] == "epoch 1 (connect)" and res["rows"][1]["label"] == "epoch 2 (explore)"
    m0, m1 = res["rows"][0]["metrics"], res["rows"][1]["metrics"]
    assert m0["accuracy"] == 0.5 and m0["gap"] == pytest.approx(0.5) and m0["mmd"] == pytest.approx(0.2)
    assert m1["gap"] != m1["gap"] and m0["anchor_acc"] != m0["anchor_acc"]  # undefined stays NaN, not 0
    # a run without the callback gives no rows (and says why)
    empty = oom_trace(SimpleNamespace(run_dir=tmp_path / "none"), None)
    assert empty["rows"] == [] and "no per-epoch trace" in empty["notes"][0]


def test_oom_trace_bad_options_and_files(tmp_path):
    ctx = SimpleNamespace(run_dir=tmp_path)
    with pytest.raises(MMIBError, match="option of protocol 'oom_trace'"):
        oom_trace(ctx, {"metric": ["accuracy"]})
    with pytest.raises(MMIBError, match="metric of protocol 'oom_trace'"):
        oom_trace(ctx, {"metrics": ["acuracy"]})
    (tmp_path / TRACE_FILE).write_text("{not json")
    with pytest.raises(MMIBError, match="not valid JSON"):
        oom_trace(ctx, None)
    with pytest.raises(MMIBError, match="every_n_epochs"):
        OOMTrace(every_n_epochs=0)
    with pytest.raises(MMIBError, match="plain file name"):
        OOMTrace(file="../x.json")


def test_trace_history_survives_a_checkpoint():
    a = OOMTrace()
    a.history = [{"epoch": 1.0, "accuracy": 0.4}]
    b = OOMTrace()
    b.load_state_dict(a.state_dict())
    assert b.history == a.history and b.state_key == a.state_key


def _tiny_suite():
    return {
        "name": "cox-tiny", "seeds": [0],
        "imports": ["mmib.bench.study_cox"],
        "methods": [{"name": "traced", "method": "cox", "callbacks": [{"target": "mmib.bench.study_cox:OOMTrace"}]},
                    {"name": "plain", "method": "cox"}],
        "data": [{"name": "sim", "data": "cox_sim",
                  "options": {"n_im": 120, "n_oom": 120, "n_val": 20, "n_test": 60, "batch_size": 32,
                              "seed": "${seed}"}}],
        "trainer": {"max_epochs": 2},
        "overrides": {"encoder.vector.hidden": [16], "method.head_fit.steps": 10, "method.connect_epochs": 1},
        "protocols": [{"oom": {"ks": [1]}}, {"oom_trace": {"metrics": ["accuracy", "acc_agree", "acc_disagree",
                                                                        "mmd"]}}],
    }


@pytest.mark.slow
def test_traced_suite_run_matches_the_final_evaluation_and_does_not_change_training(tmp_path):
    from mmib.bench.runner import run_suite

    out = tmp_path / "bench"
    res = run_suite(_tiny_suite(), out_dir=out, progress=False, print_summary=False)
    assert res["complete"] and not res["failures"]
    trace = json.loads((out / "traced-sim-s0" / TRACE_FILE).read_text())["history"]
    assert [h["epoch"] for h in trace] == [1.0, 2.0] and [h["phase"] for h in trace] == ["connect", "explore"]
    assert not (out / "plain-sim-s0" / TRACE_FILE).exists()
    agg = {(a["variant"], a["protocol"], a["row"], a["metric"]): a["values"][0] for a in res["aggregate"]}
    # the last epoch of the trace is the trained method the oom protocol evaluates
    for m in ("accuracy", "acc_agree", "acc_disagree"):
        assert agg[("traced", "oom_trace", "trace/epoch-02", m)] == agg[("traced", "oom", "method/oom", m)], m
    assert agg[("traced", "oom_trace", "trace/epoch-01", "mmd")] > 0
    # evaluation only: the same run without the callback ends with the same metrics, to the last bit
    oom_keys = [k for k in agg if k[0] == "traced" and k[1] == "oom"]
    assert oom_keys
    for k in oom_keys:
        same_nan = math.isnan(agg[k]) and math.isnan(agg[("plain", *k[1:])])
        assert agg[("plain", *k[1:])] == agg[k] or same_nan, k
    assert not any(k[0] == "plain" and k[1] == "oom_trace" for k in agg)
    # the data seed follows the run seed
    cfg = json.loads((out / "plain-sim-s0" / "results.json").read_text())["config"]
    assert cfg["data"]["seed"] == 0
    epochs, per_seed = trace_series(res, "sim", "traced", "accuracy")
    assert epochs == [1, 2] and per_seed[0][1] == agg[("traced", "oom", "method/oom", "accuracy")]
    png = plot_traces(res, tmp_path / "curves.png", "sim", ["traced", "plain"], ["accuracy", "mmd"])
    assert png.stat().st_size > 1000
    with pytest.raises(MMIBError, match="no oom_trace values"):
        plot_traces(res, tmp_path / "none.png", "sim", ["plain"], ["accuracy"])


def test_packaged_cox_suite_is_a_five_seed_study():
    from mmib.bench.overrides import run_overrides
    from mmib.bench.suite import load_suite
    from mmib.config import compose_config, to_container

    s = load_suite("cox")
    assert len(s.seeds) >= 5 and "chaotic" in s.notes and "mmib.bench.study_cox" in s.imports
    assert any("oom_trace" in p for p in s.protocols if isinstance(p, dict))
    traced = {v.name for v in s.methods if any(c["target"] == "mmib.bench.study_cox:OOMTrace" for c in v.callbacks)}
    assert {"cox", "cox-no_exploration", "cox-kl_per_pair", "cox-mmd_init"} <= traced
    v = next(v for v in s.methods if v.name == "cox")
    d = next(d for d in s.data if d.name == "sim-semi")
    c = to_container(compose_config(run_overrides(s, v, d, 3, Path("/tmp/unused"), progress=False)))
    assert c["data"]["seed"] == 3 and c["seed"] == 3 and c["method"]["optim"]["lr"] == 1e-3


@pytest.mark.parametrize("connections", [True, False])
def test_trace_computes_the_head_diagnostics_only_for_a_method_declaring_connections(connections):
    """The Fig. 5/6 diagnostics need COX's heads and connections: OOMTrace asks the method's declared OOM state
    (Method.oom_state().connections), not its attributes; a method without an OOM state is a named error."""
    from mmib.methods.base import OOMState

    trainer = SimpleNamespace(datamodule=SimpleNamespace(split_batch=lambda split: {}))
    module = SimpleNamespace(name="m", oom_state=lambda epoch=None: OOMState("oom", connections=connections))
    assert OOMTrace()._make_tracker(trainer, module).with_heads is connections
    none = SimpleNamespace(name="plain", oom_state=lambda epoch=None: None)
    with pytest.raises(MMIBError, match="method 'plain' names no OOM modality"):
        OOMTrace()._make_tracker(trainer, none)
