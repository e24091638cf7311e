"""A method variant's own ``seeds:`` (issue 19: COX's 5 seeds in the 3-seed controls suite): planning, the ``--seeds``
filter, import from an archive, aggregation over each variant's seeds, the results file and the report's n; the
other runs keep their fingerprints; a bad value names the suite and the variant."""

import json

import pytest

from mmib.bench.plan import plan_suite, select_runs
from mmib.bench.results import read_results
from mmib.bench.suite import parse_suite
from mmib.errors import MMIBError

ROW = "method/concat/linear"


def _five(tiny_suite):
    """tiny (seeds 0, 1, 2 here) with clip-b on seeds 0-4."""
    return {**tiny_suite, "seeds": [0, 1, 2],
            "methods": [tiny_suite["methods"][0], {**tiny_suite["methods"][1], "seeds": [0, 1, 2, 3, 4]}]}


def test_a_variant_runs_its_own_seeds_and_the_other_runs_keep_their_fingerprints(tiny_suite, tmp_path):
    suite = parse_suite(_five(tiny_suite))
    assert suite.seeds_of(suite.methods[0]) == [0, 1, 2] and suite.seeds_of(suite.methods[1]) == [0, 1, 2, 3, 4]
    assert suite.all_seeds() == [0, 1, 2, 3, 4]
    plan = plan_suite(suite, tmp_path / "out")
    fp = {r.folder.name: r.fingerprint for r in plan}
    assert sorted(fp) == [*(f"clip-a-mf2-s{s}" for s in range(3)), *(f"clip-b-mf2-s{s}" for s in range(5))]
    # the same runs as in the suite without the key (seeds 0-2) and in the suite at seeds 0-4 for everyone
    plain = {r.folder.name: r.fingerprint for r in plan_suite(parse_suite({**tiny_suite, "seeds": [0, 1, 2]}),
                                                               tmp_path / "out")}
    wide = {r.folder.name: r.fingerprint for r in plan_suite(parse_suite({**tiny_suite, "seeds": [0, 1, 2, 3, 4]}),
                                                              tmp_path / "out")}
    assert all(fp[k] == f for k, f in plain.items()) and all(fp[k] == wide[k] for k in fp)
    # the results file's suite: the key only where it is given (other suites' files stay as they were)
    d = suite.to_dict()
    assert "seeds" not in d["methods"][0] and d["methods"][1]["seeds"] == [0, 1, 2, 3, 4]
    assert "seeds" not in parse_suite(tiny_suite).to_dict()["methods"][1]
    # --seeds: a seed only clip-b runs selects clip-b's run of it; a seed no variant runs is an error
    assert [r.folder.name for r in select_runs(suite, plan, seeds=[3, 4])] == ["clip-b-mf2-s3", "clip-b-mf2-s4"]
    assert [r.folder.name for r in select_runs(suite, plan, methods=["clip-a"], seeds=[4])] == []
    assert len(select_runs(suite, plan, seeds=[0])) == 2
    with pytest.raises(MMIBError, match=r"unknown seed\(s\) \[7\]; the suite has \[0, 1, 2, 3, 4\]"):
        select_runs(suite, plan, seeds=[7])
    # a sweep gives every swept variant the entry's seeds
    swept = parse_suite({**tiny_suite, "methods": [{"name": "clip", "sweep": {"objective.temperature": [0.1, 0.5]},
                                                    "seeds": [5]}]})
    assert [(v.name, v.seeds) for v in swept.methods] == [("clip-temperature-0.1", [5]), ("clip-temperature-0.5", [5])]


@pytest.mark.parametrize("seeds, match", [
    ([], "must be a non-empty list of integers, got \\[\\]"),
    ("0-4", "must be a non-empty list of integers, got '0-4'"),
    ([0, 1.5], "must be a non-empty list of integers"),
    ([True], "must be a non-empty list of integers"),
    ([0, 1, 1], "must list each seed once, got \\[0, 1, 1\\]"),
])
def test_a_bad_variant_seeds_value_names_the_suite_and_the_variant(tiny_suite, seeds, match):
    raw = {**tiny_suite, "methods": [tiny_suite["methods"][0], {**tiny_suite["methods"][1], "seeds": seeds}]}
    with pytest.raises(MMIBError, match=r"suite 'tiny' variant 'clip-b' \(methods\[1\]\): seeds " + match):
        parse_suite(raw)
    assert parse_suite({**raw, "methods": [{**tiny_suite["methods"][1], "seeds": 3}]}).methods[0].seeds == [3]


def _record(suite_name, run, value):
    """A finished run's record as the evaluation writes it (the fields the bench reads), with one probe row."""
    return {"complete": True, "bench": {"suite": suite_name, "variant": run.variant.name, "method": run.variant.method,
                                        "data": run.data.name, "seed": run.seed, "fingerprint": run.fingerprint},
            "protocols": {"probe": {"protocol": "probe", "primary_metric": "accuracy", "rows": [
                {"id": ROW, "label": "clip concat linear", "source": "method",
                 "metrics": {"accuracy": value}, "chance": {"accuracy": 0.1}}]}},
            "timings": {"train": 1.0, "eval_total": 0.5}, "git_commit": "x", "finished": "now"}


def test_aggregate_results_file_and_report_use_each_variants_seeds(tiny_suite, tmp_path, capsys):
    from mmib.bench.report import render_bench_report
    from mmib.bench.runner import run_suite

    raw = _five(tiny_suite)
    suite = parse_suite(raw)
    plan = plan_suite(suite, tmp_path / "out")
    values = {r.folder.name: (0.5 if r.variant.name == "clip-a" else 0.8) + 0.01 * r.seed for r in plan}
    arch = tmp_path / "archive"
    arch.mkdir()
    for r in plan:
        (arch / f"{r.folder.name}.json").write_text(json.dumps(_record(suite.name, r, values[r.folder.name])))
    (arch / "clip-a-mf2-s3.json").write_text(  # not a run of the suite (clip-a runs seeds 0-2): not imported
        json.dumps(_record(suite.name, plan[0], 0.0) | {"bench": {**_record(suite.name, plan[0], 0)["bench"],
                                                                  "seed": 3}}))
    kept = tmp_path / "results.json"
    res = run_suite(raw, out_dir=tmp_path / "out", progress=False, print_summary=False, report_only=True,
                    import_archive=arch, results=kept)
    assert res["complete"] and len(res["runs"]) == 8 and "clip-a-mf2-s3" not in res["records"]
    for variant, ss in (("clip-a", [0, 1, 2]), ("clip-b", [0, 1, 2, 3, 4])):
        a = next(a for a in res["aggregate"] if a["variant"] == variant and a["row"] == ROW)
        ref = [values[f"{variant}-mf2-s{s}"] for s in ss]
        mean = sum(ref) / len(ref)
        std = (sum((x - mean) ** 2 for x in ref) / (len(ref) - 1)) ** 0.5
        assert a["seeds"] == ss and a["n"] == len(ss)
        assert a["mean"] == pytest.approx(mean, rel=1e-12) and a["std"] == pytest.approx(std, rel=1e-12)
        assert next(e for e in res["leaderboard"]["entries"] if e["variant"] == variant)["n"] == len(ss)
    packed = json.loads(kept.read_text())
    assert packed["seeds"] == {"clip-a": {"mf2": [0, 1, 2]}, "clip-b": {"mf2": [0, 1, 2, 3, 4]}}
    assert [m.get("seeds") for m in packed["suite"]["methods"]] == [None, [0, 1, 2, 3, 4]]
    back = read_results(kept)
    assert {(a["variant"], a["n"]) for a in back["aggregate"]} == {("clip-a", 3), ("clip-b", 5)}
    page = render_bench_report(back, page=True)
    assert "Seeds: 0, 1, 2 (clip-b: 0, 1, 2, 3, 4)." in page and "8 of 8 runs complete" in page
    assert "(n=3)" in page and "(n=5)" in page and "| row | clip-a | clip-b (5 seeds) | chance |" in page
    # the results file counts every run as done: a dry run keeps all 8, --seeds 3 only clip-b's
    import yaml

    from mmib.cli import main

    suite_file = tmp_path / "tiny.yaml"
    suite_file.write_text(yaml.safe_dump(raw))
    capsys.readouterr()
    args = ["bench", str(suite_file), "--out", str(tmp_path / "fresh"), "--results", str(kept), "--no-archive",
            "--dry-run"]
    assert main(args) == 0
    lines = [x.split() for x in capsys.readouterr().out.splitlines() if x.strip()]
    assert len(lines) == 8 and {x[0] for x in lines} == {"kept"}
    assert main([*args, "--seeds", "3"]) == 0
    assert [x.split()[1].rsplit("/", 1)[-1] for x in capsys.readouterr().out.splitlines() if x.strip()] == [
        "clip-b-mf2-s3"]
