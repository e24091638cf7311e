"""mmib.cli.eval: ``mmib eval``'s protocol list from its flags (build_protocols), and its errors through the mmib
command (one line, exit code 2)."""

import argparse

import pytest

from mmib.cli import main
from mmib.cli.eval import build_protocols
from mmib.errors import MMIBError, UnknownNameError


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_unknown_modality_in_eval(capsys, tmp_path):
    code, _, _ = _run(capsys, "train", "data.views=[0,5]", "trainer.max_epochs=1", f"run_dir={tmp_path}", "name=x",
                      "trainer.enable_progress_bar=false")
    assert code == 0
    code, out, err = _run(capsys, "eval", str(tmp_path / "x"), "--modalities", "fou,nope")
    assert code == 2
    assert err.startswith("mmib: error: unknown modality of data set 'mfeat' 'nope'; valid: fou, mor")


def test_eval_of_truncated_checkpoint_is_one_line_exit_2(capsys, tmp_path):
    code, _, _ = _run(capsys, "train", "data.views=[0,5]", "trainer.max_epochs=1", f"run_dir={tmp_path}", "name=x",
                      "trainer.enable_progress_bar=false", "data.batch_size=256")
    assert code == 0
    ckpts = tmp_path / "x" / "checkpoints"
    data = (ckpts / "last.ckpt").read_bytes()
    (ckpts / "trunc.ckpt").write_bytes(data[: len(data) // 3])
    code, out, err = _run(capsys, "eval", str(ckpts / "trunc.ckpt"), "--protocols", "probe", "--no-progress")
    assert code == 2
    assert err.startswith(f"mmib: error: '{ckpts / 'trunc.ckpt'}': not a readable checkpoint (truncated or "
                          "corrupted?): "), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x" / "results.json").exists()


def _eval_args(*argv):
    from mmib.cli.eval import register_cli

    p = argparse.ArgumentParser(prog="mmib")
    register_cli(p.add_subparsers(dest="command", required=True))
    return p.parse_args(["eval", "runs/x", *argv])


def test_build_protocols_defaults_to_every_default_protocol_with_the_flags_options():
    from mmib.eval.protocols import DEFAULT_PROTOCOLS

    got = build_protocols(_eval_args())
    assert [p["protocol"] for p in got] == list(DEFAULT_PROTOCOLS)
    by = {p["protocol"]: p for p in got}
    assert by["probe"] == {"protocol": "probe", "probes": ["linear", "mlp"], "representations": ["concat"]}
    assert by["subsets"] == {"protocol": "subsets", "probe": "linear", "representation": "concat"}
    assert by["retrieval"] == {"protocol": "retrieval"} and by["plots"] == {"protocol": "plots"}


def test_build_protocols_from_flags_and_options():
    got = build_protocols(_eval_args(
        "--protocols", "probe, subsets,retrieval", "--probe", "mlp,", "--modalities", "fou, kar",
        "--representation", "components,concat", "--subsets-probe", "mlp", "--retrieval", "fou->kar",
        "--option", "subsets.sizes=[1, 2]", "--option", "retrieval.normalize=false", "--option", "probe.note=a: b"))
    assert got == [
        {"protocol": "probe", "probes": ["mlp"], "representations": ["components", "concat"],
         "modalities": ["fou", "kar"], "note": {"a": "b"}},  # values are YAML
        # the subsets protocol takes one representation: the first, and components fall back to concat
        {"protocol": "subsets", "probe": "mlp", "representation": "concat", "sizes": [1, 2]},
        {"protocol": "retrieval", "directions": "fou->kar", "normalize": False},
    ]
    assert build_protocols(_eval_args("--protocols", "subsets", "--representation", "fused"))[0]["representation"] \
        == "fused"


@pytest.mark.parametrize("argv, error, match", [
    (["--protocols", "probe,nope"], UnknownNameError, r"unknown protocol 'nope'; valid: .*probe"),
    (["--option", "subsets.sizes"], MMIBError, r"--option 'subsets.sizes': expected PROTOCOL.OPTION=VALUE"),
    (["--option", "sizes=[1]"], MMIBError, r"--option 'sizes=\[1\]': expected PROTOCOL.OPTION=VALUE"),
    (["--protocols", "probe", "--option", "plots.tsne=false"], MMIBError,
     r"--option 'plots.tsne=false': protocol 'plots' is not run \(running: probe\)"),
    (["--option", "subsets.sizes=[1,"], MMIBError, r"cannot parse option value '\[1,'"),
])
def test_build_protocols_errors_name_the_flag(argv, error, match):
    with pytest.raises(error, match=match):
        build_protocols(_eval_args(*argv))


@pytest.mark.parametrize("argv, message", [
    (["report"], "mmib: error: mmib report: give run / suite folders, or --suite NAME --into PAGE"),
    (["report", "--into", "page.md"], "mmib: error: mmib report: --into renders a suite's tables; give --suite NAME"),
    (["report", "--suite", "cox", "runs/a"], "mmib: error: mmib report --suite: give the suite by name alone"),
])
def test_report_usage_errors_are_one_line(capsys, argv, message):
    code, _, err = _run(capsys, *argv)
    assert code == 2 and err.startswith(message), err
    assert err.count("\n") == 1


def test_report_of_a_results_file_that_is_not_an_evaluation(capsys, tmp_path):
    import json

    (tmp_path / "results.json").write_text(json.dumps({"kind": "something-else"}))
    code, _, err = _run(capsys, "report", str(tmp_path))
    assert code == 2
    assert err == f"mmib: error: '{tmp_path}': results.json is not an mmib evaluation (kind 'something-else')\n"
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"kind": "mmib-eval"}))
    code, _, err = _run(capsys, "report", "--suite", "cox", "--results", str(suite))
    assert code == 2 and err.startswith(f"mmib: error: '{suite}' is not the results of bench suite 'cox'")


def test_eval_jobs_flag():
    assert _eval_args().jobs is None and _eval_args("--jobs", "1").jobs == 1
    with pytest.raises(SystemExit):
        _eval_args("--jobs", "two")
