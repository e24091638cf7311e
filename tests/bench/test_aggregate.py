"""mmib.bench.aggregate: mean ± sample std over seeds of every (protocol, row, metric) (against the statistics
module), NaN and single seeds, and the leaderboard's ranking."""

import math
import statistics

import pytest

from mmib.bench.aggregate import aggregate, default_leaderboard_spec, flatten_results, leaderboard, mean_std
from mmib.errors import MMIBError


def _res(variant, data, seed, acc, loss, extra=None):
    rows = [{"id": "method/concat/linear", "source": "method", "label": "linear",
             "metrics": {"accuracy": acc, "loss": loss, "flag": True, "note": "x"}, "chance": {"accuracy": 0.1}},
            {"id": "raw/concat/linear", "source": "raw", "metrics": {"accuracy": 0.5}}]
    return {"bench": {"variant": variant, "method": "clip", "data": data, "seed": seed},
            "protocols": {"probe": {"protocol": "probe", "primary_metric": "accuracy", "rows": rows},
                          **(extra or {})}}


def test_mean_std_is_the_sample_std():
    vals = [0.71, 0.64, 0.9, 0.55]
    m, s = mean_std(vals)
    assert m == pytest.approx(statistics.fmean(vals), abs=1e-15)
    assert s == pytest.approx(statistics.stdev(vals), abs=1e-15)  # ddof = 1
    m1, s1 = mean_std([0.3])
    assert m1 == 0.3 and math.isnan(s1)  # one seed: no spread, never a fake 0
    assert all(math.isnan(v) for v in mean_std([0.2, float("nan")]))
    with pytest.raises(MMIBError, match="no values"):
        mean_std([])


def test_flatten_keeps_numeric_metrics_with_their_chance():
    recs = flatten_results(_res("a", "d", 0, 0.8, 1.2))
    got = {(r["row"], r["metric"]): (r["value"], r["chance"]) for r in recs}
    assert got == {("method/concat/linear", "accuracy"): (0.8, 0.1), ("method/concat/linear", "loss"): (1.2, None),
                   ("raw/concat/linear", "accuracy"): (0.5, None)}  # booleans and strings left out
    assert {r["kind"] for r in recs} == {"probe"}


def test_aggregate_groups_by_variant_data_and_row_in_seed_order():
    runs = [_res("a", "d", s, acc, loss) for s, acc, loss in [(2, 0.9, 1.0), (0, 0.7, 1.4), (1, 0.8, 1.1)]]
    runs += [_res("b", "d", 0, 0.6, 2.0)]
    agg = {(g["variant"], g["row"], g["metric"]): g for g in aggregate(runs)}
    g = agg[("a", "method/concat/linear", "accuracy")]
    assert g["seeds"] == [0, 1, 2] and g["values"] == [0.7, 0.8, 0.9] and g["n"] == 3
    assert g["mean"] == pytest.approx(0.8) and g["std"] == pytest.approx(statistics.stdev([0.7, 0.8, 0.9]))
    assert g["chance"] == 0.1 and g["method"] == "clip" and g["data"] == "d"
    assert agg[("a", "method/concat/linear", "loss")]["mean"] == pytest.approx(3.5 / 3)
    b = agg[("b", "method/concat/linear", "accuracy")]
    assert b["n"] == 1 and b["mean"] == 0.6 and math.isnan(b["std"])
    assert len(agg) == 2 * 3
    with pytest.raises(MMIBError, match="seed 0 of a on d appears twice"):
        aggregate([_res("a", "d", 0, 0.7, 1.0), _res("a", "d", 0, 0.8, 1.0)])
    with pytest.raises(MMIBError, match="without its 'bench' identity"):
        aggregate([{"protocols": {}}])


def test_default_leaderboard_spec_prefers_the_probe_protocol_and_the_concat_row():
    other = {"ret": {"protocol": "retrieval", "rows": [{"id": "method/a->b", "source": "method",
                                                         "metrics": {"R@1": 0.2}}]}}
    res = {**_res("a", "d", 0, 0.8, 1.0), "protocols": {**other, **_res("a", "d", 0, 0.8, 1.0)["protocols"]}}
    assert default_leaderboard_spec([res]) == {"protocol": "probe", "row": "method/concat/linear",
                                               "metric": "accuracy"}
    only_ret = {"protocols": other}
    assert default_leaderboard_spec([only_ret]) == {"protocol": "ret", "row": "method/a->b", "metric": "R@1"}
    assert default_leaderboard_spec([]) == {}


def test_leaderboard_ranks_per_data_set_in_the_metrics_direction():
    runs = [_res(v, d, s, acc, loss) for v, d, s, acc, loss in [
        ("a", "d1", 0, 0.6, 0.5), ("a", "d1", 1, 0.8, 0.7), ("b", "d1", 0, 0.9, 1.5), ("c", "d1", 0, float("nan"), 0.1),
        ("a", "d2", 0, 0.4, 0.9), ("b", "d2", 0, 0.3, 0.2)]]
    agg = aggregate(runs)
    spec = {"protocol": "probe", "row": "method/concat/linear", "metric": "accuracy"}
    lb = leaderboard(agg, spec, ["a", "b", "c"], ["d1", "d2"])
    assert lb["higher_is_better"] is True
    got = [(e["data"], e["variant"], e.get("rank")) for e in lb["entries"]]
    assert got == [("d1", "b", 1), ("d1", "a", 2), ("d1", "c", None), ("d2", "a", 1), ("d2", "b", 2)]
    a1 = lb["entries"][1]
    assert a1["mean"] == pytest.approx(0.7) and a1["n"] == 2 and a1["values"] == [0.6, 0.8] and a1["chance"] == 0.1
    by_loss = leaderboard(agg, {**spec, "metric": "loss"}, ["a", "b", "c"], ["d1"])
    assert by_loss["higher_is_better"] is False
    assert [(e["variant"], e["rank"]) for e in by_loss["entries"]] == [("c", 1), ("a", 2), ("b", 3)]
    assert leaderboard(agg, {}, ["a"], ["d1"]) == {"entries": []}
    with pytest.raises(MMIBError, match="leaderboard: 'row' is missing"):
        leaderboard(agg, {"protocol": "probe", "metric": "accuracy"}, ["a"], ["d1"])
