"""``mmib bench``: a 2-method × 2-seed suite aggregates correctly (mean ± sample std recomputed from the runs' own
results.json), an interrupted suite — by an exception or by SIGKILL — resumes without redoing finished runs, and
suite files are validated with errors that name the key."""

import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mmib.bench.plan import plan_suite
from mmib.bench.runner import run_suite
from mmib.bench.suite import parse_suite
from mmib.errors import MMIBError, UnknownNameError

SUITE = {
    "name": "tiny",
    "seeds": [0, 1],
    "methods": [{"name": "clip-a", "method": "clip", "overrides": {"objective.temperature": 0.1}},
                {"name": "clip-b", "method": "clip", "overrides": {"objective.temperature": 0.5}}],
    "data": [{"name": "mf2", "data": "mfeat", "options": {"views": [0, 2], "batch_size": 256}}],
    "trainer": {"max_epochs": 1},
    "overrides": {"method.representation_dim": 16, "method.embed_dim": 8, "encoder.vector.hidden": [16]},
    "protocols": [{"probe": {"probes": ["linear"], "probe_options": {"max_epochs": 20}}}],
    "leaderboard": {"protocol": "probe", "row": "method/concat/linear", "metric": "accuracy"},
}


def _accuracy(folder):
    res = json.loads((folder / "results.json").read_text())
    rows = {r["id"]: r for r in res["protocols"]["probe"]["rows"]}
    return rows["method/concat/linear"]["metrics"]["accuracy"]


def test_two_methods_two_seeds_aggregate_and_resume(tmp_path):
    out = tmp_path / "tiny"
    res = run_suite(SUITE, out_dir=out, progress=False, print_summary=False)
    assert res["complete"] and not res["failures"] and len(res["runs"]) == 4
    agg = {(a["variant"], a["row"], a["metric"]): a for a in res["aggregate"] if a["protocol"] == "probe"}
    for v in ("clip-a", "clip-b"):
        accs = [_accuracy(out / f"{v}-mf2-s{s}") for s in (0, 1)]
        a = agg[(v, "method/concat/linear", "accuracy")]
        assert sorted(a["seeds"]) == [0, 1] and a["n"] == 2
        assert a["mean"] == pytest.approx(np.mean(accs), abs=1e-12)
        assert a["std"] == pytest.approx(np.std(accs, ddof=1), abs=1e-12)
    entries = {e["variant"]: e for e in res["leaderboard"]["entries"]}
    assert set(entries) == {"clip-a", "clip-b"}
    assert (out / "report.md").is_file() and json.loads((out / "results.json").read_text())["complete"]
    assert "clip-a" in (out / "report.md").read_text()
    # everything done: a second call trains nothing and changes no run's results
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/results.json")}
    assert all(r.status == "done" for r in plan_suite(SUITE, out))
    again = run_suite(SUITE, out_dir=out, progress=False, print_summary=False)
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/results.json")} == stamps
    assert again["aggregate"] == res["aggregate"]
    # a changed configuration makes exactly the affected runs stale
    changed = {**SUITE, "methods": [SUITE["methods"][0], {**SUITE["methods"][1], "overrides": {
        "objective.temperature": 0.3}}]}
    status = {r.folder.name: r.status for r in plan_suite(changed, out)}
    assert status == {"clip-a-mf2-s0": "done", "clip-a-mf2-s1": "done", "clip-b-mf2-s0": "stale",
                      "clip-b-mf2-s1": "stale"}


class Crash(BaseException):
    """Stands for an interruption (Ctrl-C, a dying machine): not an ``Exception``, so the runner does not record it
    as a failed run and go on."""


def test_interrupted_suite_resumes_without_redoing_finished_runs(tmp_path, monkeypatch):
    import mmib.bench.runner as runner

    out = tmp_path / "tiny"
    real = runner._execute
    calls, crash = [], [True]

    def interrupt_second(run, suite, progress):
        calls.append(run.folder.name)
        if len(calls) == 2 and crash[0]:
            crash[0] = False
            raise Crash
        return real(run, suite, progress)

    monkeypatch.setattr(runner, "_execute", interrupt_second)
    with pytest.raises(Crash):
        run_suite(SUITE, out_dir=out, progress=False, print_summary=False)
    first = calls[0]
    stamp = (out / first / "results.json").stat().st_mtime_ns
    status = {r.folder.name: r.status for r in plan_suite(SUITE, out)}
    assert status[first] == "done" and sum(s == "done" for s in status.values()) == 1
    calls.clear()
    res = run_suite(SUITE, out_dir=out, progress=False, print_summary=False)
    assert first not in calls and len(calls) == 3
    assert res["complete"] and (out / first / "results.json").stat().st_mtime_ns == stamp


KILLER = textwrap.dedent(
    """
    import json, os, signal, sys
    import mmib.bench.runner as runner

    real = runner._execute
    done = []

    def kill_during_second(run, suite, progress):
        if done:  # the second run: die in the middle of training, without any clean-up
            import lightning as L

            class Kill(L.Callback):
                def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
                    if trainer.global_step == 2:
                        os.kill(os.getpid(), signal.SIGKILL)

            import mmib.engine as engine
            train = engine.train
            engine.train = lambda cfg, callbacks=None, **kw: train(cfg, callbacks=[Kill(), *(callbacks or [])], **kw)
        out = real(run, suite, progress)
        done.append(run.folder.name)
        return out

    runner._execute = kill_during_second
    runner.run_suite(json.loads(sys.argv[1]), out_dir=sys.argv[2], progress=False, print_summary=False)
    """
)


def test_suite_killed_with_sigkill_resumes(tmp_path):
    suite = {**SUITE, "methods": SUITE["methods"][:1], "trainer": {"max_epochs": 2, "checkpoint_every_n_steps": 1},
             "data": [{"name": "mf2", "data": "mfeat", "options": {"views": [0, 2], "batch_size": 128}}]}
    out = tmp_path / "tiny"
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    r = subprocess.run([sys.executable, str(script), json.dumps(suite), str(out)], capture_output=True, text=True)
    assert r.returncode == -9, r.stderr[-3000:]
    status = {p.folder.name: p.status for p in plan_suite(suite, out)}
    assert status == {"clip-a-mf2-s0": "done", "clip-a-mf2-s1": "resume"}, status
    stamp = (out / "clip-a-mf2-s0" / "results.json").stat().st_mtime_ns
    res = run_suite(suite, out_dir=out, progress=False, print_summary=False)
    assert res["complete"] and (out / "clip-a-mf2-s0" / "results.json").stat().st_mtime_ns == stamp
    run = json.loads((out / "clip-a-mf2-s1" / "run.json").read_text())
    assert run["resumed_from"].endswith("last.ckpt") and run["finished"]
    # the results files are whole JSON (atomic writes)
    for p in out.rglob("*.json"):
        json.loads(p.read_text())


def test_only_data_restricts_a_variant():
    raw = {**SUITE, "methods": [SUITE["methods"][0], {**SUITE["methods"][1], "only_data": ["mf3"]}],
           "data": [*SUITE["data"], {"name": "mf3", "data": "mfeat", "options": {"views": [0, 1, 2]}}]}
    plan = plan_suite(parse_suite(raw), "/tmp/unused-mmib-bench")
    names = sorted(p.folder.name for p in plan)
    assert names == ["clip-a-mf2-s0", "clip-a-mf2-s1", "clip-a-mf3-s0", "clip-a-mf3-s1", "clip-b-mf3-s0",
                     "clip-b-mf3-s1"]
    with pytest.raises(UnknownNameError, match="data entry in only_data .* 'nope'; valid: mf2, mf3"):
        parse_suite({**raw, "methods": [{"name": "clip", "only_data": ["nope"]}]})


@pytest.mark.parametrize("patch, match", [
    ({"methods": []}, "'methods' is empty"),
    ({"methods": ["nope"]}, "unknown method 'nope'"),
    ({"data": [{"name": "x", "data": "nodata"}]}, "unknown data config .* 'nodata'"),
    ({"seeds": []}, "seeds must be a non-empty list"),
    ({"colour": 1}, "colour"),
    ({"methods": [{"name": "clip", "only_data": 3}]}, "only_data: expected a non-empty list"),
    ({"protocols": [{"nope": {}}]}, "nope"),
])
def test_bad_suites_name_the_key(patch, match):
    with pytest.raises(MMIBError, match=match):
        parse_suite({**SUITE, **patch})


def test_packaged_suites_parse():
    from mmib.bench.suite import load_suite, packaged_suites

    names = packaged_suites()
    assert "demo" in names
    for n in names:
        s = load_suite(n)
        assert s.methods and s.data and s.seeds and not math.isnan(len(s.seeds))


def test_a_selection_runs_only_its_runs_and_the_report_covers_the_suite(tmp_path):
    out = tmp_path / "tiny"
    res = run_suite(SUITE, out_dir=out, progress=False, print_summary=False, methods=["clip-b"], seeds=[1])
    assert sorted(p.parent.name for p in out.glob("*/results.json")) == ["clip-b-mf2-s1"]
    runs = {r["folder"]: r["complete"] for r in res["runs"]}
    assert runs == {"clip-a-mf2-s0": False, "clip-a-mf2-s1": False, "clip-b-mf2-s0": False, "clip-b-mf2-s1": True}
    assert not res["complete"]
    agg = [a for a in res["aggregate"] if a["protocol"] == "probe" and a["row"] == "method/concat/linear"
           and a["metric"] == "accuracy"]
    assert [(a["variant"], a["n"]) for a in agg] == [("clip-b", 1)]
    assert agg[0]["mean"] == pytest.approx(_accuracy(out / "clip-b-mf2-s1"), abs=1e-12)
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/results.json")}
    again = run_suite(SUITE, out_dir=out, progress=False, print_summary=False, report_only=True)
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/results.json")} == stamps  # nothing trained
    assert json.dumps(again["aggregate"], sort_keys=True) == json.dumps(res["aggregate"], sort_keys=True)
    assert (out / "report.md").is_file()
    with pytest.raises(MMIBError, match=r"unknown seed\(s\) \[7\]; the suite has \[0, 1\]"):
        run_suite(SUITE, out_dir=out, progress=False, print_summary=False, seeds=[7])
    with pytest.raises(MMIBError, match=r"unknown method variant\(s\) \['clip'\]; the suite has \['clip-a', 'clip-b'\]"):
        run_suite(SUITE, out_dir=out, progress=False, print_summary=False, methods=["clip"])


def test_an_archive_carries_finished_runs_to_a_fresh_suite_folder(tmp_path, capsys):
    # session 1 runs one run and archives it; session 2 (a new machine: empty suite folder) restores it instead of
    # training it again and archives what it adds; an archived run of another configuration is not restored
    archive = tmp_path / "kept"
    first = tmp_path / "machine1"
    run_suite(SUITE, out_dir=first, progress=False, print_summary=False, methods=["clip-b"], seeds=[1],
              archive=archive)
    assert sorted(p.name for p in archive.iterdir()) == ["clip-b-mf2-s1.json"]
    kept = json.loads((archive / "clip-b-mf2-s1.json").read_text())
    assert kept == json.loads((first / "clip-b-mf2-s1" / "results.json").read_text())

    second = tmp_path / "machine2"
    plan = {r.folder.name: r.status for r in plan_suite(parse_suite(SUITE), second)}
    assert set(plan.values()) == {"new"}
    res = run_suite(SUITE, out_dir=second, progress=False, print_summary=False, methods=["clip-b"], archive=archive)
    assert not (second / "clip-b-mf2-s1" / "checkpoints").exists()  # restored, not retrained
    assert (second / "clip-b-mf2-s0" / "checkpoints").exists()
    assert json.loads((second / "clip-b-mf2-s1" / "results.json").read_text()) == kept
    assert {r["folder"]: r["complete"] for r in res["runs"]}["clip-b-mf2-s1"]
    assert sorted(p.name for p in archive.iterdir()) == ["clip-b-mf2-s0.json", "clip-b-mf2-s1.json"]

    import yaml

    from mmib.cli import main

    suite_file = tmp_path / "tiny.yaml"
    suite_file.write_text(yaml.safe_dump(SUITE))
    capsys.readouterr()
    assert main(["bench", str(suite_file), "--out", str(tmp_path / "machine4"), "--dry-run", "--archive",
                 str(archive)]) == 0
    printed = capsys.readouterr().out.split("\n")
    assert sorted(line.split()[0] for line in printed if line.strip()) == ["archived", "archived", "new", "new"]
    assert not (tmp_path / "machine4").exists()  # a dry run writes nothing

    # a run redone with --force replaces its archived copy
    kept_file = archive / "clip-b-mf2-s0.json"
    kept_file.write_text(kept_file.read_text().replace('"complete": true', '"complete": true, "old": 1', 1))
    run_suite(SUITE, out_dir=second, progress=False, print_summary=False, methods=["clip-b"], seeds=[0],
              force=True, archive=archive)
    assert json.loads(kept_file.read_text()) == json.loads((second / "clip-b-mf2-s0" / "results.json").read_text())

    changed = dict(SUITE, trainer={"max_epochs": 2})  # another fingerprint: the archived copies do not count
    plan = plan_suite(parse_suite(changed), tmp_path / "machine3")
    from mmib.bench.archive import sync_archive

    assert sync_archive(plan, archive) == (0, 0)
    assert not (tmp_path / "machine3").exists()


def test_the_leaderboard_chance_row_is_per_data_set():
    # a binary and a ten-class data set: each column gets its own chance level (not the first one's)
    from mmib.bench.report import leaderboard_table

    results = {
        "suite": {"data": [{"name": "bin"}, {"name": "ten"}, {"name": "none"}], "methods": [{"name": "a"}]},
        "leaderboard": {"metric": "accuracy", "entries": [
            {"variant": "a", "data": "bin", "mean": 0.8, "std": float("nan"), "n": 1, "chance": 0.5, "rank": 1},
            {"variant": "a", "data": "ten", "mean": 0.9, "std": float("nan"), "n": 1, "chance": 0.1, "rank": 1},
        ]},
    }
    header, rows = leaderboard_table(results)
    assert header == ["variant", "bin", "ten", "none"]
    assert rows[-1] == ["chance", "0.5000", "0.1000", "—"]


def test_fingerprint_ignores_cache_switches_and_the_default_gather_switch():
    # runs finished before a no-op switch existed must stay done: cache locations and gather_distributed: false
    # (what every objective did before the switch) do not enter the fingerprint; a real change does
    from mmib.bench.overrides import config_fingerprint

    base = {"method": {"name": "comm", "objective": {"temperature": 0.1}}, "trainer": {"max_epochs": 2}, "seed": 0}
    fp = config_fingerprint(base, ["probe"])
    same = {**base, "method": {"name": "comm", "objective": {"temperature": 0.1, "gather_distributed": False},
                               "mine": {"cache": True, "cache_dir": "/x"}}}
    assert config_fingerprint(same, ["probe"]) == fp  # (a block left empty counts as absent)
    only_switch = {"method": {"name": "cross", "objective": {"gather_distributed": False}}, "seed": 0}
    assert config_fingerprint(only_switch, []) == config_fingerprint({"method": {"name": "cross"}, "seed": 0}, [])
    gathered = {**base, "method": {"name": "comm", "objective": {"temperature": 0.1, "gather_distributed": True}}}
    assert config_fingerprint(gathered, ["probe"]) != fp
    assert config_fingerprint({**base, "trainer": {"max_epochs": 3}}, ["probe"]) != fp
