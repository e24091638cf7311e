"""mmib.bench.runner (``mmib bench``): a 2-method × 2-seed suite aggregates correctly (mean ± sample std recomputed
from the runs' own results.json), an interrupted suite — by an exception or by SIGKILL — resumes without redoing
finished runs, and a selection runs only its runs while the report covers the suite."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mmib.bench.plan import plan_suite
from mmib.bench.runner import run_suite
from mmib.errors import MMIBError


def _accuracy(folder):
    res = json.loads((folder / "results.json").read_text())
    rows = {r["id"]: r for r in res["protocols"]["probe"]["rows"]}
    return rows["method/concat/linear"]["metrics"]["accuracy"]


def test_two_methods_two_seeds_aggregate_and_resume(tiny_suite, tmp_path):
    out = tmp_path / "tiny"
    res = run_suite(tiny_suite, out_dir=out, progress=False, print_summary=False)
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
    assert all(r.status == "done" for r in plan_suite(tiny_suite, out))
    again = run_suite(tiny_suite, out_dir=out, progress=False, print_summary=False)
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/results.json")} == stamps
    assert again["aggregate"] == res["aggregate"]
    # a changed configuration makes exactly the affected runs stale
    changed = {**tiny_suite, "methods": [tiny_suite["methods"][0], {**tiny_suite["methods"][1], "overrides": {
        "objective.temperature": 0.3}}]}
    status = {r.folder.name: r.status for r in plan_suite(changed, out)}
    assert status == {"clip-a-mf2-s0": "done", "clip-a-mf2-s1": "done", "clip-b-mf2-s0": "stale",
                      "clip-b-mf2-s1": "stale"}


class Crash(BaseException):
    """Stands for an interruption (Ctrl-C, a dying machine): not an ``Exception``, so the runner does not record it
    as a failed run and go on."""


def test_interrupted_suite_resumes_without_redoing_finished_runs(tiny_suite, tmp_path, monkeypatch):
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
        run_suite(tiny_suite, out_dir=out, progress=False, print_summary=False)
    first = calls[0]
    stamp = (out / first / "results.json").stat().st_mtime_ns
    status = {r.folder.name: r.status for r in plan_suite(tiny_suite, out)}
    assert status[first] == "done" and sum(s == "done" for s in status.values()) == 1
    calls.clear()
    res = run_suite(tiny_suite, out_dir=out, progress=False, print_summary=False)
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


def test_suite_killed_with_sigkill_resumes(tiny_suite, tmp_path):
    suite = {**tiny_suite, "methods": tiny_suite["methods"][:1],
             "trainer": {"max_epochs": 2, "checkpoint_every_n_steps": 1},
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


def test_a_selection_runs_only_its_runs_and_the_report_covers_the_suite(tiny_suite, tmp_path):
    out = tmp_path / "tiny"
    res = run_suite(tiny_suite, out_dir=out, progress=False, print_summary=False, methods=["clip-b"], seeds=[1])
    assert sorted(p.parent.name for p in out.glob("*/results.json")) == ["clip-b-mf2-s1"]
    runs = {r["folder"]: r["complete"] for r in res["runs"]}
    assert runs == {"clip-a-mf2-s0": False, "clip-a-mf2-s1": False, "clip-b-mf2-s0": False, "clip-b-mf2-s1": True}
    assert not res["complete"]
    agg = [a for a in res["aggregate"] if a["protocol"] == "probe" and a["row"] == "method/concat/linear"
           and a["metric"] == "accuracy"]
    assert [(a["variant"], a["n"]) for a in agg] == [("clip-b", 1)]
    assert agg[0]["mean"] == pytest.approx(_accuracy(out / "clip-b-mf2-s1"), abs=1e-12)
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/results.json")}
    again = run_suite(tiny_suite, out_dir=out, progress=False, print_summary=False, report_only=True)
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/results.json")} == stamps  # nothing trained
    assert json.dumps(again["aggregate"], sort_keys=True) == json.dumps(res["aggregate"], sort_keys=True)
    assert (out / "report.md").is_file()
    with pytest.raises(MMIBError, match=r"unknown seed\(s\) \[7\]; the suite has \[0, 1\]"):
        run_suite(tiny_suite, out_dir=out, progress=False, print_summary=False, seeds=[7])
    with pytest.raises(MMIBError, match=r"unknown method variant\(s\) \['clip'\]; the suite has "
                                        r"\['clip-a', 'clip-b'\]"):
        run_suite(tiny_suite, out_dir=out, progress=False, print_summary=False, methods=["clip"])


