"""The suite's kept results file and the archive: a partly finished suite continues on a fresh clone from its
``results.json`` alone, and from a copied archive; ``mmib report --suite NAME --into PAGE`` splices the tables between
markers and keeps the hand-written text; a stale run is moved aside by the engine (``overwrite=true``), not deleted."""

import json
import shutil

import pytest

import mmib.bench.runner as runner
from mmib.bench.archive import slim_record
from mmib.bench.plan import plan_suite
from mmib.bench.report import render_bench_report, splice_between, suite_markers
from mmib.bench.results import read_results
from mmib.bench.runner import run_suite
from mmib.errors import MMIBError

SUITE = {
    "name": "tiny-kept",
    "seeds": [0, 1],
    "methods": [{"name": "clip-a", "method": "clip", "overrides": {"objective.temperature": 0.1}}],
    "data": [{"name": "mf2", "data": "mfeat", "options": {"views": [0, 2], "batch_size": 256}}],
    "trainer": {"max_epochs": 1},
    "overrides": {"method.representation_dim": 16, "method.embed_dim": 8, "encoder.vector.hidden": [16]},
    "protocols": [{"probe": {"probes": ["linear"], "probe_options": {"max_epochs": 5}}}],
}


@pytest.fixture()
def counting(monkeypatch):
    calls = []
    real = runner._execute

    def count(run, suite, progress):
        calls.append(run.folder.name)
        return real(run, suite, progress)

    monkeypatch.setattr(runner, "_execute", count)
    return calls


def test_partly_finished_suite_continues_from_results_file_or_archive(tmp_path, counting):
    kept, arch = tmp_path / "repo" / "results.json", tmp_path / "archive"
    first = run_suite(SUITE, out_dir=tmp_path / "machine1", seeds=[0], progress=False, print_summary=False,
                      results=kept, archive=arch)
    assert counting == ["clip-a-mf2-s0"] and not first["complete"]
    assert json.loads(kept.read_text())["format"] == "packed-2"
    rec = read_results(kept)["records"]["clip-a-mf2-s0"]
    full = json.loads((tmp_path / "machine1" / "clip-a-mf2-s0" / "results.json").read_text())
    slim = slim_record(full)
    assert rec["bench"] == full["bench"] and set(rec["protocols"]) == set(slim["protocols"])
    for pname, p in slim["protocols"].items():
        got = {r["id"]: r["metrics"] for r in rec["protocols"][pname]["rows"]}
        for row in p["rows"]:
            assert got[row["id"]] == pytest.approx(row["metrics"], rel=1e-6)
    kept_rec = json.loads(kept.read_text())["records"]["clip-a-mf2-s0"]  # identity + fingerprint; metrics in aggregate
    assert "protocols" not in kept_rec and len(json.dumps(kept_rec)) < len(json.dumps(full)) / 4
    assert (arch / "clip-a-mf2-s0.json").is_file()  # the full record went to the archive
    # a fresh clone: the kept results file alone (no run folder, no archive)
    clone = tmp_path / "clone"
    shutil.copytree(tmp_path / "repo", clone)
    status = {r.folder.name: r.status for r in plan_suite(SUITE, tmp_path / "m2",
                                                          previous=read_results(clone / "results.json"))}
    assert status == {"clip-a-mf2-s0": "done", "clip-a-mf2-s1": "new"}
    counting.clear()
    res = run_suite(SUITE, out_dir=tmp_path / "m2", progress=False, print_summary=False,
                    results=clone / "results.json")
    assert counting == ["clip-a-mf2-s1"] and res["complete"]
    agg = next(a for a in res["aggregate"] if a["row"] == "method/concat/linear" and a["metric"] == "accuracy")
    acc0 = next(r for r in rec["protocols"]["probe"]["rows"] if r["id"] == "method/concat/linear")["metrics"]
    assert agg["seeds"] == [0, 1] and agg["values"][0] == acc0["accuracy"] and agg["n"] == 2
    assert set(read_results(clone / "results.json")["records"]) == {"clip-a-mf2-s0", "clip-a-mf2-s1"}
    # another machine with a copy of the archive only
    counting.clear()
    shutil.copytree(arch, tmp_path / "arch-copy")
    res3 = run_suite(SUITE, out_dir=tmp_path / "m3", progress=False, print_summary=False,
                     archive=tmp_path / "arch-copy")
    assert counting == ["clip-a-mf2-s1"] and res3["complete"]
    # the kept records of another configuration are not counted as done
    changed = {**SUITE, "trainer": {"max_epochs": 2}}
    assert {r.status for r in plan_suite(changed, tmp_path / "m4", previous=read_results(
        clone / "results.json"))} == {"new"}
    # --import-archive: the archived records enter the results, those of an earlier configuration flagged as such
    imp = run_suite(changed, out_dir=tmp_path / "m5", progress=False, print_summary=False, report_only=True,
                    import_archive=tmp_path / "arch-copy", results=tmp_path / "imported.json")
    assert [(r["complete"], r["earlier_config"]) for r in imp["runs"]] == [(False, True), (False, True)]
    assert next(a for a in imp["aggregate"] if a["row"] == "method/concat/linear" and a["metric"] == "accuracy")[
        "values"] == pytest.approx(agg["values"], rel=1e-6)
    page_text = render_bench_report(read_results(tmp_path / "imported.json"), page=True)
    assert "2 more recorded under an earlier configuration" in page_text
    assert {r.status for r in plan_suite(changed, tmp_path / "m5", previous=read_results(
        tmp_path / "imported.json"))} == {"new"}

    # mmib report --suite NAME --into PAGE: the tables between the markers, the hand-written text kept
    from mmib.cli import main

    page = tmp_path / "page.md"
    b, e = suite_markers("tiny-kept")
    page.write_text(f"# My study\n\nWritten by hand.\n\n{b}\nold tables\n{e}\n\nMore analysis.\n")
    assert main(["report", "--suite", "tiny-kept", "--results", str(clone / "results.json"), "--into", str(page)]) == 0
    text = page.read_text()
    assert text.startswith("# My study\n\nWritten by hand.\n\n" + b) and text.endswith(e + "\n\nMore analysis.\n")
    assert "old tables" not in text and "clip-a" in text and "2 of 2 runs complete" in text
    assert main(["report", "--suite", "tiny-kept", "--results", str(clone / "results.json"), "--into", str(page)]) == 0
    assert page.read_text() == text  # idempotent
    assert main(["report", "--suite", "other", "--results", str(clone / "results.json"), "--into", str(page)]) != 0
    assert page.read_text() == text

    # a stale run (another configuration in the same folder) is moved aside by the engine, not deleted
    counting.clear()
    stale = {**SUITE, "seeds": [0], "methods": [{**SUITE["methods"][0], "overrides": {"objective.temperature": 0.2}}]}
    assert [r.status for r in plan_suite(stale, tmp_path / "machine1")] == ["stale"]
    run_suite(stale, out_dir=tmp_path / "machine1", progress=False, print_summary=False)
    aside = list((tmp_path / "machine1").glob("clip-a-mf2-s0.replaced-*"))
    assert len(aside) == 1 and (aside[0] / "config.yaml").is_file() and (aside[0] / "results.json").is_file()
    assert [r.status for r in plan_suite(stale, tmp_path / "machine1")] == ["done"]


def test_splice_between_markers():
    b, e = suite_markers("x")
    assert splice_between("", b, e, "T") == f"{b}\nT\n{e}\n"
    assert splice_between("head\n", b, e, "T") == f"head\n\n{b}\nT\n{e}\n"
    assert splice_between(f"a\n{b}\nold\n{e}\nz\n", b, e, "new") == f"a\n{b}\nnew\n{e}\nz\n"
    with pytest.raises(MMIBError, match="once each"):
        splice_between(f"a\n{e}\n{b}\n", b, e, "T")
    with pytest.raises(MMIBError, match="once each"):
        splice_between(f"a\n{b}\n", b, e, "T")
