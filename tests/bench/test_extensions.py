"""Suites that express a study: per-run callbacks, evaluation on other data (eval_data), a study analysis registered
as a protocol (register_protocol + imports), and a sweep over a method option."""

import json

import lightning as L
import pytest

from mmib.bench.extensions import register_protocol
from mmib.bench.plan import plan_suite
from mmib.bench.runner import run_suite
from mmib.bench.suite import parse_suite
from mmib.errors import MMIBError
from mmib.eval.protocols import PROTOCOLS


class Trace(L.Callback):
    """A per-epoch trace written into the run folder (like COX's OOM tracker or OMIB's r trace)."""

    def __init__(self, file: str = "trace.json"):
        self.file, self.epochs = file, []

    def on_train_epoch_end(self, trainer, pl_module):
        self.epochs.append({"epoch": trainer.current_epoch, "loss": float(trainer.callback_metrics["train/loss"])})
        from pathlib import Path

        (Path(trainer.default_root_dir) / self.file).write_text(json.dumps(self.epochs))


def data_size(ctx, options=None):
    """A study analysis: how many samples the evaluation data set holds (shows which data it ran on)."""
    return {"protocol": "data_size", "options": dict(options or {}), "notes": [], "plots": {},
            "primary_metric": "n", "rows": [{"id": "method/n", "source": "method", "label": "samples",
                                             "metrics": {"n": float(len(ctx.dm.dataset))}}]}


@pytest.fixture()
def registered():
    register_protocol("data_size", data_size)
    yield
    PROTOCOLS.pop("data_size", None)


def suite(eval_data=True):
    return {
        "name": "tiny-study", "seeds": [0],
        "methods": [{"name": "clip", "sweep": {"objective.temperature": [0.1, 0.5]},
                     "callbacks": [{"target": f"{__name__}:Trace", "file": "trace.json"}]}],
        "data": [{"name": "sa", "data": "sim_align", "options": {"n_samples": 400, "n_modalities": 2},
                  **({"eval_data": {"options": {"n_samples": 600}}} if eval_data else {})}],
        "trainer": {"max_epochs": 2},
        "overrides": {"method.representation_dim": 8, "method.embed_dim": 8, "encoder.vector.hidden": [16]},
        "protocols": ["data_size"],
        "notes": "a test suite",
    }


def test_callbacks_eval_data_registered_protocol_and_sweep(tmp_path, registered):
    s = parse_suite(suite())
    assert [v.name for v in s.methods] == ["clip-temperature-0.1", "clip-temperature-0.5"]
    assert [v.overrides for v in s.methods] == [{"objective.temperature": 0.1}, {"objective.temperature": 0.5}]
    out = tmp_path / "study"
    res = run_suite(suite(), out_dir=out, progress=False, print_summary=False)
    assert res["complete"] and not res["failures"]
    for v in ("clip-temperature-0.1", "clip-temperature-0.5"):
        trace = json.loads((out / f"{v}-sa-s0" / "trace.json").read_text())
        assert [t["epoch"] for t in trace] == [0, 1]
        cfg = json.loads((out / f"{v}-sa-s0" / "results.json").read_text())["config"]
        assert cfg["data"]["n_samples"] == 400  # trained on 400 samples ...
    agg = {a["variant"]: a for a in res["aggregate"] if a["protocol"] == "data_size"}
    assert {v: a["values"] for v, a in agg.items()} == {"clip-temperature-0.1": [600.0], "clip-temperature-0.5": [600.0]}
    assert "Note: a test suite" in (out / "report.md").read_text()
    # evaluation data and callbacks enter the fingerprint: without eval_data the runs are stale
    assert {r.status for r in plan_suite(suite(eval_data=False), out)} == {"stale"}
    assert {r.status for r in plan_suite(suite(), out)} == {"done"}


def test_extension_keys_are_validated(registered):
    with pytest.raises(MMIBError, match="import path"):
        parse_suite({**suite(), "callbacks": ["no_colon"]})
    with pytest.raises(MMIBError, match="cannot import"):
        parse_suite({**suite(), "imports": ["mmib.no_such_module"]})
    with pytest.raises(MMIBError, match="one method option"):
        parse_suite({**suite(), "methods": [{"name": "clip", "sweep": {"a": [1], "b": [2]}}]})
    with pytest.raises(MMIBError, match="registered already"):
        register_protocol("probe", data_size)


def test_packaged_study_suite_symile_geometry_runs_small(tmp_path):
    """The packaged symile-geometry suite (a study script turned suite): its protocol is registered by `imports`,
    and on a tiny configuration its metrics are what they claim to be."""
    from mmib.bench.suite import load_suite

    s = load_suite("symile-geometry")
    assert "embedding_geometry" in PROTOCOLS and [v.name for v in s.methods][-1] == "clip"
    s.methods = [v for v in s.methods if v.name == "clip"]
    s.trainer = {"max_epochs": 1}
    s.overrides = {"method.representation_dim": 16, "method.embed_dim": 8, "encoder.vector.hidden": [16]}
    res = run_suite(s, out_dir=tmp_path / "g", progress=False, print_summary=False)
    assert res["complete"], res["failures"]
    m = {a["metric"]: a["values"][0] for a in res["aggregate"] if a["protocol"] == "embedding_geometry"}
    prs = [v for k, v in m.items() if k.startswith("participation_ratio/")]
    assert len(prs) == 3 and all(1.0 <= p <= 8.0 for p in prs)  # between one coordinate and all 8
    n = json.loads((tmp_path / "g" / "clip-mfeat-3v-s0" / "results.json").read_text())["splits"]["test"]
    assert m["inverse_rows_per_class"] == pytest.approx(10 / n) and 0 <= m["R@1"] <= m["top1_same_class"] <= 1
