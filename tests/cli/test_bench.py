"""mmib.cli.bench: ``mmib bench``'s listing, dry run, selection flags and archive choice, down to the call of
run_suite (the suite machinery itself: tests/bench)."""

import argparse

import pytest
import yaml

import mmib.bench.runner as runner
from mmib.cli import main
from mmib.cli.bench import _archive, _names

SUITE = {
    "name": "tiny",
    "seeds": [0, 1],
    "methods": [{"name": "clip-a", "method": "clip"}, {"name": "clip-b", "method": "clip",
                                                        "overrides": {"objective.temperature": 0.5}}],
    "data": [{"name": "mf2", "data": "mfeat", "options": {"views": [0, 2]}}],
    "trainer": {"max_epochs": 1},
    "protocols": [{"probe": {"probes": ["linear"]}}],
}


@pytest.fixture()
def suite_file(tmp_path):
    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump(SUITE))
    return p


def test_names_splits_on_commas_and_drops_blanks():
    assert _names(" clip-a, ,clip-b,") == ["clip-a", "clip-b"]
    assert _names(None) is None and _names("") is None


def test_archive_folder_choice(tmp_path, monkeypatch):
    ns = argparse.Namespace
    assert _archive(ns(no_archive=True, archive=str(tmp_path)), "cox") is None
    assert _archive(ns(no_archive=False, archive=str(tmp_path / "a")), "cox") == str(tmp_path / "a")
    monkeypatch.setenv("MMIB_ARCHIVE", str(tmp_path / "root"))
    assert _archive(ns(no_archive=False, archive=None), "cox") == tmp_path / "root" / "cox"


def test_list_prints_every_packaged_suite(capsys):
    from mmib.bench.suite import load_suite, packaged_suites

    assert main(["bench", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = packaged_suites()
    assert [ln.split()[0] for ln in lines] == names
    demo = load_suite("demo")
    counts = f"{len(demo.methods)} variants × {len(demo.data)} data × {len(demo.seeds)} seeds"
    assert counts in lines[names.index("demo")]


def test_dry_run_prints_the_selected_runs_status_and_writes_nothing(suite_file, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["bench", str(suite_file), "--out", str(out), "--dry-run", "--no-archive"]) == 0
    printed = [ln.split() for ln in capsys.readouterr().out.splitlines()]
    assert printed == [["new", str(out / f"{v}-mf2-s{s}")] for v in ("clip-a", "clip-b") for s in (0, 1)]
    assert main(["bench", str(suite_file), "--out", str(out), "--dry-run", "--no-archive", "--methods", "clip-b",
                 "--seeds", "1"]) == 0
    assert capsys.readouterr().out.split() == ["new", str(out / "clip-b-mf2-s1")]
    assert not out.exists()


def test_dry_run_tells_kept_records_from_stale_ones(suite_file, tmp_path, capsys, monkeypatch):
    import mmib.bench.archive as archive
    from mmib.bench.plan import plan_suite
    from mmib.bench.suite import load_suite

    out = tmp_path / "out"
    fp = {p.folder.name: p.fingerprint for p in plan_suite(load_suite(suite_file), out)}
    records = {"clip-a-mf2-s0": {"complete": True, "bench": {"fingerprint": fp["clip-a-mf2-s0"]}},
               "clip-b-mf2-s0": {"complete": True, "bench": {"fingerprint": "an-earlier-config"}}}
    monkeypatch.setattr(archive, "previous_results", lambda *a, **k: {"records": records, "tune": {}})
    assert main(["bench", str(suite_file), "--out", str(out), "--dry-run", "--no-archive"]) == 0
    printed = {ln.split()[1].rsplit("/", 1)[-1]: ln.split()[0] for ln in capsys.readouterr().out.splitlines()}
    assert printed == {"clip-a-mf2-s0": "kept", "clip-a-mf2-s1": "new", "clip-b-mf2-s0": "stale",
                       "clip-b-mf2-s1": "new"}


def test_a_run_passes_the_flags_to_run_suite(suite_file, tmp_path, monkeypatch):
    calls = []

    def fake_run_suite(suite, **kw):
        calls.append((suite, kw))
        return {"failures": kw.get("fail_fast") and ["clip-a-mf2-s0"] or []}

    monkeypatch.setattr(runner, "run_suite", fake_run_suite)
    assert main(["bench", str(suite_file), "--out", str(tmp_path / "o"), "--seeds", "1, 0", "--data", "mf2",
                 "--no-progress", "--archive", str(tmp_path / "arch")]) == 0
    suite, kw = calls[-1]
    assert suite.name == "tiny" and kw["seeds"] == [1, 0] and kw["data"] == ["mf2"] and kw["methods"] is None
    assert kw["out_dir"] == str(tmp_path / "o") and kw["archive"] == str(tmp_path / "arch")
    assert kw["progress"] is False and kw["report_only"] is False and kw["force"] is False
    # importing an archive trains nothing (report only) and reads that folder
    assert main(["bench", str(suite_file), "--import-archive", str(tmp_path / "old"), "--no-archive"]) == 0
    kw = calls[-1][1]
    assert kw["report_only"] is True and kw["import_archive"] == kw["archive"] == str(tmp_path / "old")
    assert main(["bench", str(suite_file), "--fail-fast", "--no-archive"]) == 1  # a failed run: exit code 1
    assert calls[-1][1]["archive"] is None


def test_unknown_suite_is_one_line_exit_2(capsys, tmp_path):
    assert main(["bench", "no_such_suite"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mmib: error: unknown bench suite 'no_such_suite'; valid: ") and "demo" in err
    assert main(["bench", str(tmp_path / "missing.yaml")]) == 2
    assert capsys.readouterr().err == f"mmib: error: suite file '{tmp_path / 'missing.yaml'}' does not exist\n"
