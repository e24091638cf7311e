"""COX's controls in the ``controls`` suite (mmib.bench.study_cox_controls): the per-class / per-group OOM protocol,
the per-epoch pull trace of the exploration term, and the suite's COX entries."""

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from mmib.bench.study_cox_controls import PULL_FILE, PULL_METRICS, PullTrace, pull_trace
from mmib.errors import MMIBError


def test_pull_trace_protocol_rows_and_errors(tmp_path):
    hist = [{"epoch": 1.0, "phase": "connect", "acc_D": 0.5, "kl_D_to_g": 2.0},
            {"epoch": 2.0, "phase": "explore", "acc_D": 0.4, "kl_D_to_g": 0.1}]
    (tmp_path / PULL_FILE).write_text(json.dumps({"split": "train", "history": hist}))
    res = pull_trace(SimpleNamespace(run_dir=tmp_path), None)
    assert [r["id"] for r in res["rows"]] == ["pull/epoch-01", "pull/epoch-02"]
    assert res["rows"][1]["label"] == "epoch 2 (explore)" and res["rows"][1]["metrics"]["kl_D_to_g"] == 0.1
    assert set(res["rows"][0]["metrics"]) == set(PULL_METRICS) and math.isnan(res["rows"][0]["metrics"]["g_max"])
    assert pull_trace(SimpleNamespace(run_dir=tmp_path / "none"), None)["rows"] == []
    with pytest.raises(MMIBError, match="option of protocol 'pull_trace'"):
        pull_trace(SimpleNamespace(run_dir=tmp_path), {"metrics": ["acc_D"]})
    (tmp_path / PULL_FILE).write_text("{}")
    with pytest.raises(MMIBError, match="no valid history"):
        pull_trace(SimpleNamespace(run_dir=tmp_path), None)
    with pytest.raises(MMIBError, match="plain file name"):
        PullTrace(file="a/b.json")
    a = PullTrace()
    a.history = [{"epoch": 1.0, "acc_D": 0.3}]
    b = PullTrace()
    b.load_state_dict(a.state_dict())
    assert b.history == a.history


def _tiny_suite():
    return {
        "name": "cox-ctl-tiny", "seeds": [0],
        "imports": ["mmib.bench.study_cox_controls"],
        "methods": [{"name": "traced", "method": "cox",
                     "callbacks": [{"target": "mmib.bench.study_cox_controls:PullTrace"}]},
                    {"name": "plain", "method": "cox"}],
        "data": [{"name": "sim", "data": "cox_sim",
                  "options": {"n_im": 150, "n_oom": 150, "n_val": 20, "n_test": 80, "batch_size": 32,
                              "seed": "${seed}"},
                  "config": {"+data.majority_fraction": 0.6, "+data.majority_rows": "oom"}}],
        "trainer": {"max_epochs": 2},
        "overrides": {"encoder.vector.hidden": [16], "method.head_fit.steps": 10, "method.connect_epochs": 1},
        "protocols": [{"oom": {"ks": [1]}}, {"oom_groups": {"groups": {"unique": [0, 1]}}}, "pull_trace"],
    }


@pytest.mark.slow
def test_suite_run_reports_groups_and_the_pull_without_changing_training(tmp_path):
    from mmib.bench.runner import run_suite

    out = tmp_path / "bench"
    res = run_suite(_tiny_suite(), out_dir=out, progress=False, print_summary=False)
    assert res["complete"] and not res["failures"]
    trace = json.loads((out / "traced-sim-s0" / PULL_FILE).read_text())["history"]
    assert [h["phase"] for h in trace] == ["connect", "explore"]
    assert not (out / "plain-sim-s0" / PULL_FILE).exists()
    agg = {(a["variant"], a["protocol"], a["row"], a["metric"]): a["values"][0] for a in res["aggregate"]}
    acc = agg[("traced", "oom", "method/oom", "accuracy")]
    shares = [agg[("traced", "oom_groups", f"class/{c}", "true_share")] for c in range(10)]
    assert sum(shares) == pytest.approx(1.0) and shares[0] > 0.4  # the test rows follow the OOM prior
    per_class = sum(s * agg[("traced", "oom_groups", f"class/{c}", "accuracy")] for c, s in enumerate(shares)
                    if s > 0)
    assert per_class == pytest.approx(acc, abs=1e-6)  # the per-class rows add up to the oom protocol's accuracy
    assert agg[("traced", "oom_groups", "disagreement", "acc_D")] == pytest.approx(
        agg[("traced", "oom", "method/oom", "acc_disagree")], abs=1e-6)  # the oom protocol averages in float32
    # evaluation only: the run without the callback ends with the same metrics
    for k in [k for k in agg if k[0] == "traced" and k[1] in ("oom", "oom_groups")]:
        v, w = agg[k], agg[("plain", *k[1:])]
        assert v == w or (math.isnan(v) and math.isnan(w)), k


def test_packaged_controls_suite_cox_entries():
    from mmib.bench.overrides import run_overrides
    from mmib.bench.suite import load_suite
    from mmib.config import compose_config, to_container

    s = load_suite("controls")
    assert "mmib.bench.study_cox_controls" in s.imports
    names = {v.name for v in s.methods}
    assert {"cox", "cox-no_exploration", "cox_erm"} <= names
    for d in ("cox-unique", "cox-prior"):
        kinds = [next(iter(p)) if isinstance(p, dict) else p for p in s.protocols_for(d)]
        assert kinds == ["oom", "oom_groups", "pull_trace"], kinds
    assert "retrieval" in [next(iter(p)) for p in s.protocols_for("xor3")]
    v = next(v for v in s.methods if v.name == "cox")
    d = next(d for d in s.data if d.name == "cox-prior")
    c = to_container(compose_config(run_overrides(s, v, d, 3, Path("/tmp/unused"), progress=False)))
    assert c["data"]["seed"] == 3 and c["data"]["majority_fraction"] == 0.8 and c["data"]["majority_rows"] == "oom"
    assert c["trainer"]["max_epochs"] == 10 and c["method"]["optim"]["lr"] == 1e-3
