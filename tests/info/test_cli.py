"""``mmib info validate``: writes the table (Markdown + JSON) and the plot; bad options are clear errors."""

import argparse
import json

import pytest

from mmib.cli.info import register_cli
from mmib.errors import UnknownNameError
from mmib.info.validate_report import load_result, markdown_report


def _parser():
    p = argparse.ArgumentParser(prog="mmib")
    register_cli(p.add_subparsers(dest="command", required=True))
    return p


def test_validate_writes_table_json_and_plot(tmp_path, capsys):
    args = _parser().parse_args([
        "info", "validate", "--quick", "--dims", "3", "--mis", "1,2", "--steps", "6", "--cond-steps", "4",
        "--estimators", "infonce,club,nce_club", "--hidden-dim", "8", "--out", str(tmp_path), "--no-progress"])
    assert args.func(args) == 0
    md = (tmp_path / "estimators.md").read_text()
    data = json.loads((tmp_path / "estimators.json").read_text())
    assert (tmp_path / "estimators.png").stat().st_size > 1000
    assert "| infonce (lower) |" in md and "## Gaussian, d = 3" in md and "![estimates vs truth](estimators.png)" in md
    assert "## Cubic (x³, y³), d = 3" in md and "*oracle: infonce with the optimal critic*" in md
    assert set(data["summary"]) == {"infonce", "club", "nce_club"}
    assert set(data["summary_nongaussian"]) == {"infonce", "club", "club_linear", "nce_club"}
    assert [lv["true"] for lv in data["summary"]["club"]["3"]] == [1.0, 2.0]
    lv = data["summary"]["infonce"]["3"][0]  # the default separable critic: g and h, 8 ReLU units each
    assert lv["units"] == 16 and 0.0 <= lv["dead"] <= 1.0 and 0.0 <= lv["saturation"] <= 1.0 and lv["sem"] > 0
    # the oracle rows: InfoNCE with the true pointwise MI, at batch 64, below log 64 and near the truth at I = 1
    orc = data["oracle"]["infonce"]["3"]
    assert 0.6 < orc[0]["mean"] < 1.1 and orc[1]["mean"] < 4.159
    assert len(data["traces"]["infonce"]["3"]) == 12
    assert {r["negatives"] for r in data["conditional"]} == {"same_condition", "batch"}
    out = capsys.readouterr().out
    assert "InfoNCE <= log N" in out and "table:" in out
    # the report re-renders from the JSON alone
    assert markdown_report(load_result(tmp_path / "estimators.json")).split("Run time")[1] == md.split("Run time")[1]


def test_unknown_estimator_is_a_named_error(tmp_path):
    args = _parser().parse_args(["info", "validate", "--estimators", "infonce,nope", "--out", str(tmp_path)])
    with pytest.raises(UnknownNameError, match="unknown estimator 'nope'; valid: club"):
        args.func(args)


def test_bad_list_option_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        _parser().parse_args(["info", "validate", "--dims", "a,b"])
    assert e.value.code == 2
    assert "comma-separated list of int" in capsys.readouterr().err


