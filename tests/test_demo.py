"""`mmib demo` end to end through the CLI: the packaged suite (probe, subsets, retrieval, plots) on the 6-view
UCI digits, at a reduced size so that it stays a unit-test-sized run (one epoch, small encoders and heads)."""

import json
import math

from mmib.cli import main

# the demo's own knobs (--epochs) plus config overrides of its run (trailing key=value, as for `mmib train`): the
# default 256-d representations and 3-layer heads make every probe of the subsets protocol slow on 2 cores
SMALL = ["method.representation_dim=16", "method.embed_dim=16", "method.head_layers=1", "encoder.vector.hidden=[32]",
         "data.batch_size=256"]


def test_demo_runs_and_reports(capsys, tmp_path):
    out = tmp_path / "demo"
    code = main(["demo", "--epochs", "1", "--out", str(out), "--no-progress", *SMALL])
    printed = capsys.readouterr().out
    assert code == 0
    assert (out / "report.md").is_file() and (out / "results.json").is_file()
    assert f"report: {out}/report.md  results: {out}/results.json" in printed
    # the probe table: the frozen CLIP representation against the raw standardized features
    rows = [line for line in printed.splitlines() if "linear softmax regression" in line]
    assert any("clip concat" in r for r in rows), printed
    assert any("raw features concat" in r for r in rows), printed
    assert "demo leaderboard" in printed

    res = json.loads((out / "results.json").read_text())
    assert res["complete"] and not res["failures"]
    assert set(res["protocols"]) == {"probe", "subsets", "retrieval", "plots"}
    acc = {a["row"]: a for a in res["aggregate"] if a["protocol"] == "probe" and a["metric"] == "accuracy"}
    assert set(acc) >= {"method/concat/linear", "raw/concat/linear"}
    for row in ("method/concat/linear", "raw/concat/linear"):
        a = acc[row]
        assert a["chance"] == 0.1  # 10 balanced classes
        (v,) = a["values"]
        assert math.isfinite(v) and 0.5 < v <= 1.0, (row, v)  # far above chance even after one epoch
    (entry,) = res["leaderboard"]["entries"]
    assert entry["variant"] == "clip" and entry["mean"] == acc["method/concat/linear"]["mean"]
    # the run folder holds its own results and the plots
    run = out / "clip-mfeat-s0"
    assert (run / "results.json").is_file() and (run / "plots" / "training_curves.png").is_file()
