"""mmib.bench.archive: finished runs archived outside the suite folder are restored instead of retrained, and
only those of the same configuration."""

import json

from mmib.bench.plan import plan_suite
from mmib.bench.runner import run_suite
from mmib.bench.suite import parse_suite


def test_an_archive_carries_finished_runs_to_a_fresh_suite_folder(tiny_suite, tmp_path, capsys):
    # session 1 runs one run and archives it; session 2 (a new machine: empty suite folder) restores it instead of
    # training it again and archives what it adds; an archived run of another configuration is not restored
    archive = tmp_path / "kept"
    first = tmp_path / "machine1"
    run_suite(tiny_suite, out_dir=first, progress=False, print_summary=False, methods=["clip-b"], seeds=[1],
              archive=archive)
    assert sorted(p.name for p in archive.iterdir()) == ["clip-b-mf2-s1.json"]
    kept = json.loads((archive / "clip-b-mf2-s1.json").read_text())
    assert kept == json.loads((first / "clip-b-mf2-s1" / "results.json").read_text())

    second = tmp_path / "machine2"
    plan = {r.folder.name: r.status for r in plan_suite(parse_suite(tiny_suite), second)}
    assert set(plan.values()) == {"new"}
    res = run_suite(tiny_suite, out_dir=second, progress=False, print_summary=False, methods=["clip-b"],
                    archive=archive)
    assert not (second / "clip-b-mf2-s1" / "checkpoints").exists()  # restored, not retrained
    assert (second / "clip-b-mf2-s0" / "checkpoints").exists()
    assert json.loads((second / "clip-b-mf2-s1" / "results.json").read_text()) == kept
    assert {r["folder"]: r["complete"] for r in res["runs"]}["clip-b-mf2-s1"]
    assert sorted(p.name for p in archive.iterdir()) == ["clip-b-mf2-s0.json", "clip-b-mf2-s1.json"]

    import yaml

    from mmib.cli import main

    suite_file = tmp_path / "tiny.yaml"
    suite_file.write_text(yaml.safe_dump(tiny_suite))
    capsys.readouterr()
    assert main(["bench", str(suite_file), "--out", str(tmp_path / "machine4"), "--dry-run", "--archive",
                 str(archive)]) == 0
    printed = capsys.readouterr().out.split("\n")
    assert sorted(line.split()[0] for line in printed if line.strip()) == ["archived", "archived", "new", "new"]
    assert not (tmp_path / "machine4").exists()  # a dry run writes nothing

    # a run redone with --force replaces its archived copy
    kept_file = archive / "clip-b-mf2-s0.json"
    kept_file.write_text(kept_file.read_text().replace('"complete": true', '"complete": true, "old": 1', 1))
    run_suite(tiny_suite, out_dir=second, progress=False, print_summary=False, methods=["clip-b"], seeds=[0],
              force=True, archive=archive)
    assert json.loads(kept_file.read_text()) == json.loads((second / "clip-b-mf2-s0" / "results.json").read_text())

    changed = dict(tiny_suite, trainer={"max_epochs": 2})  # another fingerprint: the archived copies do not count
    plan = plan_suite(parse_suite(changed), tmp_path / "machine3")
    from mmib.bench.archive import sync_archive

    assert sync_archive(plan, archive) == (0, 0)
    assert not (tmp_path / "machine3").exists()
