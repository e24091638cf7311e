"""The kept results file's packed form reads back to the same aggregate and run records (no training): single-seed
NaN std, a metric measured on fewer seeds, metrics equal to another (stored once), 7 significant digits."""

import json
import math

import pytest

from mmib.bench.aggregate import aggregate
from mmib.bench.results import pack_results, read_results, unpack_results, write_kept_results


def _run(variant, seed, acc, extra=None, method="clip"):
    rows = [{"id": "method/concat/linear", "label": f"{variant} concat", "source": "method",
             "metrics": {"accuracy": acc, "score": acc, **(extra or {})}, "chance": {"accuracy": 0.1}}]
    return {"complete": True, "bench": {"suite": "s", "variant": variant, "method": method, "data": "d", "seed": seed,
                                        "fingerprint": f"fp{variant}{seed}"},
            "protocols": {"probe": {"protocol": "probe", "primary_metric": "accuracy", "rows": rows}},
            "timings": {"train": 1.0}, "git_commit": "abc", "finished": "now"}


def test_pack_unpack_round_trip(tmp_path):
    runs = [_run("a", 0, 0.5123456789, {"mse": 1.25}), _run("a", 1, 0.625), _run("b", 0, 1 / 3)]
    agg = aggregate(runs)
    results = {"kind": "mmib-bench", "suite": {"name": "s"}, "aggregate": agg, "primary_metrics": {"probe": "accuracy"},
               "records": {f"{r['bench']['variant']}-d-s{r['bench']['seed']}": r for r in runs},
               "runs": [{"variant": r["bench"]["variant"], "method": "clip", "data": "d", "seed": r["bench"]["seed"],
                         "folder": f"{r['bench']['variant']}-d-s{r['bench']['seed']}", "complete": True,
                         "fingerprint": r["bench"]["fingerprint"], "timings": {"train": 1.0},
                         "learned_temperature": None} for r in runs]
               + [{"variant": "b", "method": "clip", "data": "d", "seed": 1, "folder": "b-d-s1", "complete": False,
                   "fingerprint": "fpb1", "timings": None, "learned_temperature": None}]}
    packed = pack_results(results)
    row = packed["aggregate"]["a"]["d"]["probe"]["rows"]["method/concat/linear"]
    assert row["score"] == "=accuracy"  # stored once
    assert row["mse"] == {"values": [1.25], "seeds": [0]}  # measured on seed 0 only: its own seed list
    assert row["accuracy"] == [0.5123457, 0.625]  # the per-seed values; mean, std and n recomputed
    # the row's header is kept once per data entry, shared by the variants, the method's name as a placeholder
    assert packed["rows"]["d"]["probe"]["method/concat/linear"] == {"label": "a concat", "source": "method",
                                                                    "chance": {"accuracy": 0.1}}
    assert set(row) == {"accuracy", "score", "mse"}  # no header of its own
    assert packed["runs"][0] == {"folder": "a-d-s0", "complete": True}  # the rest is in its record
    assert "protocols" not in packed["records"]["a-d-s0"]
    p = write_kept_results(tmp_path / "r.json", results)
    back = read_results(p)
    assert unpack_results(json.loads(p.read_text())) == back
    assert back["runs"] == results["runs"]  # unfinished runs (no record) kept whole
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
    assert set(packed["aggregate"]["a"]["d"]["info_probe"]["rows"]["concat/u1"]) == {"score", "macro_f1"}
    assert set(packed["aggregate"]["a"]["d"]["probe"]["rows"]["method/concat/linear"]) == {
        "accuracy", "score", "mse"}
    back = read_results(write_kept_results(tmp_path / "r.json", results))
    assert protocol_tables(back) == protocol_tables(results)


def test_shared_headers_use_the_method_name_and_keep_what_differs(tmp_path):
    """A label that starts with the method's name is shared as '{method} …' and filled in per variant; a variant
    whose header differs (another chance) keeps its own; both read back exactly."""
    runs = [_run("a", 0, 0.5, method="a"), _run("b", 0, 0.25, method="b"), _run("c", 0, 0.75, method="c")]
    runs[1]["protocols"]["probe"]["rows"][0]["label"] = "b concat"
    runs[2]["protocols"]["probe"]["rows"][0]["chance"] = {"accuracy": 0.2}
    results = {"kind": "mmib-bench", "suite": {"name": "s"}, "aggregate": aggregate(runs),
               "primary_metrics": {"probe": "accuracy"},
               "records": {f"{r['bench']['variant']}-d-s0": r for r in runs}, "runs": []}
    packed = pack_results(results)
    assert packed["rows"]["d"]["probe"]["method/concat/linear"]["label"] == "{method} concat"
    assert set(packed["aggregate"]["b"]["d"]["probe"]["rows"]["method/concat/linear"]) == {"accuracy", "score"}
    assert packed["aggregate"]["c"]["d"]["probe"]["rows"]["method/concat/linear"]["~head"] == {
        "chance": {"accuracy": 0.2}}
    back = read_results(write_kept_results(tmp_path / "r.json", results))
    got = {(a["variant"], a["metric"]): a for a in back["aggregate"]}
    assert [got[(v, "accuracy")]["label"] for v in "abc"] == ["a concat", "b concat", "c concat"]
    assert [got[(v, "accuracy")]["chance"] for v in "abc"] == [0.1, 0.1, 0.2]


def test_reads_the_packed_1_form():
    """Files kept before packed-2 ([mean, std, n, values(, seeds)] and a header per variant) still read."""
    kept = {"kind": "mmib-bench", "format": "packed-1", "seeds": {"a": {"d": [0, 1]}},
            "aggregate": {"a": {"d": {"probe": {"kind": "probe", "rows": {"r": {
                "label": "a r", "source": "method", "chance": {"accuracy": 0.5},
                "metrics": {"accuracy": [0.75, 0.35355339, 2, [0.5, 1.0]], "mse": [2.0, None, 1, [2.0], [1]],
                            "score": "=accuracy"}}}}}}},
            "records": {f"a-d-s{s}": {"complete": True, "bench": {"variant": "a", "method": "a", "data": "d",
                                                                   "seed": s}} for s in (0, 1)}}
    back = unpack_results(kept)
    got = {a["metric"]: a for a in back["aggregate"]}
    assert got["accuracy"]["values"] == [0.5, 1.0] and got["accuracy"]["mean"] == 0.75
    assert got["accuracy"]["std"] == pytest.approx(math.sqrt(0.125)) and got["score"]["values"] == [0.5, 1.0]
    assert got["mse"]["seeds"] == [1] and math.isnan(got["mse"]["std"]) and got["accuracy"]["chance"] == 0.5
    assert back["records"]["a-d-s1"]["protocols"]["probe"]["rows"][0]["metrics"] == {
        "accuracy": 1.0, "score": 1.0, "mse": 2.0}
