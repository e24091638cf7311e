"""mmib.eval.paper: a recipe's paper block normalized and checked (one metric or several, scale), our value read
from the named protocol row and scaled to the paper's unit, and the "paper vs ours" table's cells."""


import pytest

from mmib.errors import MMIBError
from mmib.eval.paper import check_paper_block, paper_comparison, paper_table


def _results(paper, rows=None):
    rows = rows if rows is not None else [
        {"id": "raw/concat/linear", "source": "raw", "metrics": {"accuracy": 0.5}},
        {"id": "method/concat/linear", "source": "method", "metrics": {"accuracy": 0.8123, "f1": float("nan")}},
        {"id": "method/concat/mlp", "source": "method", "metrics": {"accuracy": 0.9}},
    ]
    return {"config": {"paper": paper}, "method": {"name": "clip"},
            "protocols": {"probe": {"protocol": "probe", "rows": rows}}}


def test_check_paper_block_normalizes_one_metric_and_several():
    p = check_paper_block({"source": "X 2024, Tab. 2", "metric": "accuracy", "reported": {"CLIP": 81, "Ours": 84.5},
                           "scale": 100, "notes": "  linear probe  "})
    assert p == {"source": "X 2024, Tab. 2", "metrics": ["accuracy"], "reported": {"CLIP": {"accuracy": 81.0},
                 "Ours": {"accuracy": 84.5}}, "scale": {"accuracy": 100.0}, "protocol": "probe", "row": None,
                 "notes": "linear probe"}
    q = check_paper_block({"source": "Y", "metric": ["accuracy", "f1"], "reported": {"A": {"f1": 0.7}},
                           "scale": {"f1": 100}, "protocol": "subsets", "row": "method/a"})
    assert q["metrics"] == ["accuracy", "f1"] and q["scale"] == {"accuracy": 1.0, "f1": 100.0}
    assert q["reported"] == {"A": {"f1": 0.7}} and (q["protocol"], q["row"]) == ("subsets", "method/a")
    with pytest.raises(MMIBError, match="expected a mapping with source, metric, reported, got \\['accuracy'\\]"):
        check_paper_block(["accuracy"])


@pytest.mark.parametrize("change,match", [
    ({"extra": 1}, r"paper: unknown key\(s\) extra; valid: source"),
    ({"source": " "}, "paper.source: expected a non-empty string"),
    ({"metric": []}, "paper.metric: expected a metric name or a non-empty list"),
    ({"reported": {}}, "paper.reported: expected a non-empty mapping"),
    ({"reported": {"A": True}}, "paper.reported.A: expected a finite number"),
    ({"reported": {"A": float("inf")}}, "paper.reported.A: expected a finite number"),
    ({"metric": ["accuracy"], "reported": {"A": {"f1": 1.0}}}, r"paper.reported.A: expected metrics among"),
    ({"scale": 0}, "paper.scale: expected a positive number"),
    ({"scale": {"f1": 2}}, "paper.scale: expected a number or a mapping over"),
    ({"protocol": "probes"}, "paper.protocol: expected one of probe"),
    ({"row": 3}, "paper.row: expected a row id"),
    ({"notes": ["a"]}, "paper.notes: expected a string"),
])
def test_bad_blocks_name_the_key(change, match):
    block = {"source": "S", "metric": "accuracy", "reported": {"A": 1.0}, **change}
    with pytest.raises(MMIBError, match=match):
        check_paper_block(block)


def test_our_value_comes_from_the_first_method_row_or_the_named_row_scaled():
    assert paper_comparison({"config": {}, "method": {"name": "clip"}}) is None
    block = {"source": "S", "metric": ["accuracy", "f1", "auc"], "reported": {"A": {"accuracy": 80.0}}, "scale": 100}
    c = paper_comparison(_results(block))
    assert c["ours"]["row"] == "method/concat/linear" and c["ours"]["method"] == "clip"
    assert c["ours"]["values"]["accuracy"] == pytest.approx(81.23)
    assert c["ours"]["values"]["f1"] is None and c["ours"]["values"]["auc"] is None  # NaN and absent: no value
    c = paper_comparison(_results({**block, "row": "method/concat/mlp"}))
    assert c["ours"]["values"]["accuracy"] == pytest.approx(90.0)
    assert paper_comparison(_results({**block, "row": "method/none"}))["ours"]["row"] is None


def test_paper_table_cells_use_the_papers_decimals():
    t = paper_table(_results({"source": "S", "metric": "accuracy", "reported": {"A": 80.125, "B": 79.5},
                              "scale": 100, "notes": "n"}))
    assert t.title == "Paper vs ours: S" and t.headers == ["method", "accuracy (×100)"]
    assert t.rows == [["paper: A", "80.125"], ["paper: B", "79.500"], ["ours (clip)", "81.230"]]
    assert t.notes == ["ours: probe row `method/concat/linear` of this evaluation; scaled to the paper's unit", "n"]
    t = paper_table(_results({"source": "S", "metric": "accuracy", "reported": {"A": 0.8}}, rows=[]))
    assert t.rows[-1] == ["ours (clip)", "—"] and t.notes == ["ours: no probe row in this evaluation"]
    assert paper_table({"config": {}, "method": {"name": "clip"}}) is None
