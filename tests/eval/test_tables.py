"""mmib.eval.tables: one value's text (fmt), the Markdown table with escaped cells, the metric columns in first-seen
order, and the generic rows × metrics table of a protocol without its own builder."""

from mmib.eval.tables import TableData, fmt, generic_tables, md_table, metric_names


def test_fmt():
    assert fmt(None) == "—" and fmt(float("nan")) == "nan"
    assert fmt(0.123456) == "0.1235" and fmt(12.34, "median_rank") == "12.3"
    assert fmt(3) == "3" and fmt("x") == "x" and fmt(True) == "True"


def test_md_table_escapes_pipes():
    assert md_table(["a", "b|c"], [["1", "x|y"], ["2", 3]]).splitlines() == [
        "| a | b\\|c |", "|---|---|", "| 1 | x\\|y |", "| 2 | 3 |"]
    assert md_table(["h"], []) == "| h |\n|---|"


def test_metric_names_first_seen_order_without_the_dropped():
    rows = [{"metrics": {"b": 1, "a": 2}}, {"metrics": {"c": 3, "a": 1}}, {"metrics": {}}]
    assert metric_names(rows) == ["b", "a", "c"]
    assert metric_names(rows, drop=("a",)) == ["b", "c"]
    assert metric_names([]) == []


def test_generic_tables():
    res = {"protocol": "study", "name": "study_x", "notes": ["n1"],
           "rows": [{"id": "r1", "metrics": {"acc": 0.5, "median_rank": 3.0}},
                    {"id": "r2", "label": "second", "metrics": {"mse": 1.0}}]}
    (t,) = generic_tables(res)
    assert t == TableData("study_x", ["row", "acc", "median_rank", "mse"],
                          [["r1", "0.5000", "3.0", "—"], ["second", "—", "—", "1.0000"]], ["n1"])
    assert generic_tables({"protocol": "p", "rows": []}) == []
    assert generic_tables({"protocol": "p", "rows": [{"id": "r", "metrics": {}}]})[0].title == "p"
