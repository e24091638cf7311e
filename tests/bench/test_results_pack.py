"""The kept results file's packed form reads back to the same aggregate and run records (no training): single-seed
NaN std, a metric measured on fewer seeds, metrics equal to another (stored once), 7 significant digits."""

import json
import math

import pytest

from mmib.bench.aggregate import aggregate
from mmib.bench.results import pack_results, read_results, unpack_results, write_kept_results


def _run(variant, seed, acc, extra=None):
    rows = [{"id": "method/concat/linear", "label": f"{variant} concat", "source": "method",
             "metrics": {"accuracy": acc, "score": acc, **(extra or {})}, "chance": {"accuracy": 0.1}}]
    return {"complete": True, "bench": {"suite": "s", "variant": variant, "method": "clip", "data": "d", "seed": seed,
                                        "fingerprint": f"fp{variant}{seed}"},
            "protocols": {"probe": {"protocol": "probe", "primary_metric": "accuracy", "rows": rows}},
            "timings": {"train": 1.0}, "git_commit": "abc", "finished": "now"}


def test_pack_unpack_round_trip(tmp_path):
    runs = [_run("a", 0, 0.5123456789, {"mse": 1.25}), _run("a", 1, 0.625), _run("b", 0, 1 / 3)]
    agg = aggregate(runs)
    results = {"kind": "mmib-bench", "suite": {"name": "s"}, "aggregate": agg, "primary_metrics": {"probe": "accuracy"},
               "records": {f"{r['bench']['variant']}-d-s{r['bench']['seed']}": r for r in runs}, "runs": []}
    packed = pack_results(results)
    row = packed["aggregate"]["a"]["d"]["probe"]["rows"]["method/concat/linear"]
    assert row["metrics"]["score"] == "=accuracy"  # stored once
    assert row["metrics"]["mse"][4] == [0]  # measured on seed 0 only: its own seed list
    assert "protocols" not in packed["records"]["a-d-s0"]
    p = write_kept_results(tmp_path / "r.json", results)
    back = read_results(p)
    assert unpack_results(json.loads(p.read_text())) == back
    key = lambda a: (a["variant"], a["row"], a["metric"])  # noqa: E731
    got = {key(a): a for a in back["aggregate"]}
    for a in agg:
        g = got[key(a)]
        assert g["seeds"] == a["seeds"] and g["n"] == a["n"] and g["chance"] == a["chance"]
        assert g["values"] == pytest.approx(a["values"], rel=1e-6) and g["mean"] == pytest.approx(a["mean"], rel=1e-6)
        assert (math.isnan(g["std"]) and math.isnan(a["std"])) or g["std"] == pytest.approx(a["std"], rel=1e-6)
    # every run's record is rebuilt from the per-seed values, and re-aggregating it gives the same numbers
    re = {key(a): a for a in aggregate(list(back["records"].values()))}
    assert set(re) == set(got) and all(re[k]["values"] == got[k]["values"] for k in re)
    assert back["records"]["a-d-s0"]["protocols"]["probe"]["rows"][0]["metrics"] == pytest.approx(
        {"accuracy": 0.5123457, "score": 0.5123457, "mse": 1.25})
    assert unpack_results({"kind": "mmib-bench", "x": 1}) == {"kind": "mmib-bench", "x": 1}  # not packed: as is


def test_pack_keeps_the_metrics_the_tables_show(tmp_path):
    """A built-in protocol whose tables show only its primary metric (info_probe) keeps only that one (and the
    leaderboard's metric); probe keeps every metric; the report's tables are the same before and after."""
    from mmib.bench.report import protocol_tables

    def run(seed, acc):
        r = _run("a", seed, acc, {"mse": 1.0 + seed})
        r["protocols"]["info_probe"] = {"protocol": "info_probe", "primary_metric": "score", "rows": [
            {"id": "concat/u1", "label": "u1", "source": "method",
             "metrics": {"score": acc / 2, "balanced_accuracy": acc / 3, "macro_f1": acc / 4}}]}
        return r

    runs = [run(0, 0.5), run(1, 0.75)]
    results = {"kind": "mmib-bench", "suite": {"name": "s", "methods": [{"name": "a"}], "data": [{"name": "d"}]},
               "aggregate": aggregate(runs), "primary_metrics": {"probe": "accuracy", "info_probe": "score"},
               "protocols": {"probe": "probe", "info_probe": "info_probe"},
               "leaderboard": {"protocol": "info_probe", "row": "concat/u1", "metric": "macro_f1"},
               "records": {f"a-d-s{r['bench']['seed']}": r for r in runs}, "runs": []}
    packed = pack_results(results)
    assert set(packed["aggregate"]["a"]["d"]["info_probe"]["rows"]["concat/u1"]["metrics"]) == {"score", "macro_f1"}
    assert set(packed["aggregate"]["a"]["d"]["probe"]["rows"]["method/concat/linear"]["metrics"]) == {
        "accuracy", "score", "mse"}
    back = read_results(write_kept_results(tmp_path / "r.json", results))
    assert protocol_tables(back) == protocol_tables(results)
