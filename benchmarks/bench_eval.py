"""Evaluation speed: ``mmib eval`` (default protocols) against the run's own training, and the subset probes
trained together against one by one.

1. ``mmib train method=ova_ib data=mfeat trainer.max_epochs=2`` (the 6-view digits) and ``mmib eval`` of that run
   with its default protocols, each a fresh process timed end to end (imports included), ``--repeats`` times
   (a new run each time, evaluated with ``--no-cache``: nothing is read from the raw-probe cache of an earlier
   repeat; the medians are compared). Goal: eval <= training. After it, the same run evaluated as a user's default
   ``mmib eval`` does (caches on, into a temporary folder, with the benchmark's own ``$MMIB_CACHE_DIR``): cold in the
   first repeat, warm from the second on (the raw-feature probes and the raw-features t-SNE map are read back; the
   run is new each repeat, so its representations are extracted). The in-process split of the last
   repeat (training loop; each protocol) is printed beside, from ``run.json`` and ``results.json``, with the
   evaluation process's CPU seconds by part (``results.json``'s ``cpu_seconds``: imports, ``load_run``, each
   protocol's thread, the figure thread). Each process's
   CPU time (user + system, from ``getrusage``) is printed too, with its eval / train ratio: on a loaded machine the
   wall times swing with the other processes, the CPU times much less.
2. On that run's representations: the 2^6 − 1 = 63 linear subset probes by ``fit_linear_probes`` (trained
   together) and by ``fit_probe`` one subset at a time, interleaved ``--repeats`` times, in one process; the ratio of
   the medians, and the largest difference between the two tables (they should agree to floating-point order).
   With ``--before SRC``: after each repeat's ``mmib eval``, the same run evaluated by another version of mmib
   (``SRC``, a ``src`` folder put first on ``PYTHONPATH``; e.g. ``git archive <commit> src | tar -x -C DIR``,
   ``--no-cache`` so that it does not read the representations the current version stored), timed the same way.
   With ``--also "ARGS"``: after each repeat's ``mmib eval``, the same run evaluated with these extra arguments
   (e.g. ``--jobs 1``: the protocols one after the other; ``--no-cache``), timed the same way.
3. With ``--compare RESULTS_JSON [...]`` (earlier ``mmib eval`` results of some runs, e.g. one run per seed evaluated
   by an older version of mmib): each run evaluated again now (default protocols, ``--no-cache``, into a temporary
   folder) and the largest difference of every metric of the probe and subsets tables, rows matched by id; with
   several, each row's accuracy differences against that row's standard deviation over the runs (the seed spread).

    .venv/bin/python benchmarks/bench_eval.py [--repeats 3] [--quick] [--keep DIR] [--before SRC] [--also ARGS]
                                              [--compare RESULTS_JSON [RESULTS_JSON ...]]

Timings depend on the machine and its load: the load average and core count are printed with them.
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _mmib() -> list[str]:
    script = Path(sys.executable).with_name("mmib")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mmib.cli"]


def _timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of a fresh process: the CPU time is its user + system time (``getrusage`` of the
    children), which other processes on a loaded machine inflate far less than the wall time."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _subset_probes(run: Path, repeats: int) -> None:
    import numpy as np

    from mmib.eval.probe import ProbeConfig, fit_linear_probes, fit_probe
    from mmib.eval.representations import extract_split
    from mmib.runs import load_run

    _, method, dm = load_run(run)
    mods = list(dm.spec.modality_names)
    names = [f"rep:{m}" for m in mods]
    sf = {s: extract_split(method, dm, s, mods, names) for s in ("train", "val", "test")}
    blocks = {s: [sf[s].features[k] for k in names] for s in sf}
    problems = [c for k in range(1, len(mods) + 1) for c in itertools.combinations(range(len(mods)), k)]
    cfg = ProbeConfig(kind="linear", seed=0)
    args = ("classification", dm.spec.n_classes, cfg)
    t_many, t_one = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        many = fit_linear_probes(blocks["train"], sf["train"].y, blocks["val"], sf["val"].y, blocks["test"],
                                 sf["test"].y, problems, *args)
        t_many.append(time.perf_counter() - t)
        t = time.perf_counter()
        one = []
        for p in problems:
            cat = {s: np.concatenate([blocks[s][b] for b in p], 1) for s in blocks}
            one.append(fit_probe(cat["train"], sf["train"].y, cat["val"], sf["val"].y, cat["test"], sf["test"].y,
                                 *args))
        t_one.append(time.perf_counter() - t)
    diff = max(abs(a.metrics["accuracy"] - b.metrics["accuracy"]) for a, b in zip(many, one))
    same_epochs = sum(a.epochs == b.epochs for a, b in zip(many, one))
    m1, m2 = statistics.median(t_many), statistics.median(t_one)
    print(f"subset probes ({len(problems)} linear probes, {len(sf['train'].y)} train rows, "
          f"{sum(b.shape[1] for b in blocks['train'])} features, 1 thread), median of {repeats}:")
    print(f"  trained together {m1:7.2f} s   one by one {m2:7.2f} s   ratio {m2 / m1:5.2f}x")
    print(f"  tables: largest |accuracy difference| {diff:.4f}; same early-stopping epoch in "
          f"{same_epochs}/{len(problems)} probes")


def _compare(references: list[Path]) -> None:
    """Evaluate the run of each earlier results.json again and print the largest differences of its tables; with
    several (e.g. the runs of several seeds), also each row's differences against its spread over those runs."""
    import json

    import numpy as np

    diffs: dict[str, dict[str, list[tuple[float, float]]]] = {"probe": {}, "subsets": {}}
    for reference in references:
        ref = json.loads(reference.read_text())
        run = Path(ref["run_dir"])
        with tempfile.TemporaryDirectory() as out:
            t, _ = _timed(_mmib() + ["eval", str(run), "--no-cache", "--no-progress", "--out", out])
            now = json.loads((Path(out) / "results.json").read_text())
        print(f"tables of {run} now vs {reference} (eval {t:.2f} s now, rows matched by id):")
        for proto in ("probe", "subsets"):
            a = {r["id"]: r for r in ref["protocols"][proto]["rows"]}
            b = {r["id"]: r for r in now["protocols"][proto]["rows"]}
            if set(a) != set(b):
                print(f"  {proto}: different rows: only before {sorted(set(a) - set(b))}, only now "
                      f"{sorted(set(b) - set(a))}")
            common = [k for k in a if k in b]
            worst = {m: max(abs(a[k]["metrics"][m] - b[k]["metrics"][m]) for k in common)
                     for m in a[common[0]]["metrics"]}
            epochs = sum(a[k].get("epochs") == b[k].get("epochs") for k in common)
            print(f"  {proto:8s} {len(common)} rows; largest |difference|: "
                  + ", ".join(f"{m} {v:.4f}" for m, v in worst.items()) + f"; same early-stopping epoch in {epochs}/"
                  f"{len(common)}")
            for k in common:
                primary = "accuracy" if "accuracy" in a[k]["metrics"] else next(iter(a[k]["metrics"]))
                before, after = a[k]["metrics"][primary], b[k]["metrics"][primary]
                diffs[proto].setdefault(k, []).append((before, after - before))
    if len(references) < 2:
        return
    print(f"over the {len(references)} runs (the seed spread: each row's standard deviation over the runs, before):")
    for proto, rows in diffs.items():
        full = {k: v for k, v in rows.items() if len(v) == len(references)}
        d = np.array([x[1] for v in full.values() for x in v])
        spread = {k: float(np.std([x[0] for x in v], ddof=1)) for k, v in full.items()}
        mean = {k: float(np.mean([x[1] for x in v])) for k, v in full.items()}
        beyond = sorted(k for k in full if abs(mean[k]) > spread[k])
        print(f"  {proto:8s} {len(full)} rows x {len(references)} runs: {int((d != 0).sum())} values changed, mean "
              f"difference {d.mean():+.4f}, largest |difference| {np.abs(d).max():.4f}; median seed spread "
              f"{np.median(list(spread.values())):.4f}; rows whose mean difference exceeds their spread: "
              f"{len(beyond)}{' (' + ', '.join(beyond) + ')' if beyond else ''}")


def _split(run: Path) -> str:
    """The in-process seconds of a run's training loop and of each protocol of its evaluation."""
    import json

    train = json.loads((run / "run.json").read_text()).get("train_seconds")
    results = json.loads((run / "results.json").read_text())
    timings, jobs = results["timings"], results.get("jobs", 1)
    parts = ", ".join(f"{k} {v:.2f}" for k, v in timings.items() if k not in ("train", "eval_total"))
    side = f"; {jobs} protocols at once: their times overlap" if jobs > 1 else ""
    line = (f"in-process (last repeat): training loop {float(train):.2f} s; evaluation {timings['eval_total']:.2f} s "
            f"({parts}{side})")
    cpu = results.get("cpu_seconds")
    if cpu:  # CPU seconds by thread: where the evaluation's work goes, whatever the machine's load
        own = ", ".join(f"{k} {v:.2f}" for k, v in cpu.get("protocols", {}).items())
        line += (f"\n  its CPU time: {cpu['process']:.2f} s until results.json (imports and the rest "
                 f"{cpu['process'] - cpu.get('load_run', 0) - cpu['evaluate']:.2f}, load_run {cpu.get('load_run', 0):.2f}"
                 f", evaluation {cpu['evaluate']:.2f}: {own}, figure thread {cpu['figures']:.2f})")
    return line


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="evaluation speed")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one repeat of everything")
    ap.add_argument("--keep", default=None, help="keep the run in this folder (default: a temporary one)")
    ap.add_argument("--before", default=None, metavar="SRC",
                    help="a src folder of another mmib version: its eval of each run is timed too")
    ap.add_argument("--also", default=None, metavar="ARGS",
                    help="extra mmib eval arguments: the run's eval with them is timed too")
    ap.add_argument("--compare", default=None, nargs="+", metavar="RESULTS_JSON",
                    help="earlier evaluations' results.json (e.g. one per seed): evaluate each run again and compare "
                         "the tables, with several also against the spread over the runs")
    a = ap.parse_args(argv)
    repeats = 1 if a.quick else a.repeats
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(a.keep or tmp)
        mmib = _mmib()
        load = os.getloadavg()[0]
        t_train, t_eval, t_before, t_also, t_warm = [], [], [], [], []
        cpu: dict[str, list[float]] = {"train": [], "eval": [], "also": [], "before": [], "warm": []}
        cache = Path(tmp) / "mmib-cache"  # the benchmark's own $MMIB_CACHE_DIR for the evaluations with caches on

        def timed(kind: str, cmd: list[str], env: dict[str, str] | None = None) -> float:
            wall, used = _timed(cmd, env)
            cpu[kind].append(used)
            return wall

        env = {**os.environ, "PYTHONPATH": str(Path(a.before).resolve())} if a.before else None
        for _ in range(repeats):  # a fresh run each time: no representation cache from an earlier evaluation
            t_train.append(timed("train", mmib + ["train", "method=ova_ib", "data=mfeat", "trainer.max_epochs=2",
                                                  f"run_dir={run_dir}", "name=bench-eval", "overwrite=true"]))
            t_eval.append(timed("eval", mmib + ["eval", str(run_dir / "bench-eval"), "--no-progress", "--no-cache"]))
            with tempfile.TemporaryDirectory() as out:  # the default (caches on; warm from the second repeat on)
                t_warm.append(timed("warm", mmib + ["eval", str(run_dir / "bench-eval"), "--no-progress", "--out",
                                                    out], {**os.environ, "MMIB_CACHE_DIR": str(cache)}))
            if a.also:
                with tempfile.TemporaryDirectory() as out:
                    t_also.append(timed("also", mmib + ["eval", str(run_dir / "bench-eval"), "--no-progress",
                                                        "--no-cache", "--out", out, *shlex.split(a.also)]))
            if env is not None:
                with tempfile.TemporaryDirectory() as out:
                    t_before.append(timed("before", [sys.executable, "-m", "mmib.cli", "eval",
                                                     str(run_dir / "bench-eval"), "--no-progress", "--no-cache",
                                                     "--out", out], env))
        m_train, m_eval = statistics.median(t_train), statistics.median(t_eval)
        print(f"{os.cpu_count()} cores, load average (1 min) {load:.2f} before / {os.getloadavg()[0]:.2f} after")
        from mmib.eval.protocols.concurrent import default_jobs

        print(f"ova_ib on the 6-view digits (mfeat), 2 epochs; fresh processes, imports included, median of {repeats}; "
              f"mmib eval's default --jobs here: {default_jobs()}:")
        print(f"  mmib train {m_train:7.2f} s   mmib eval (default protocols) {m_eval:7.2f} s   "
              f"eval / train  {m_eval / m_train:5.2f}  ({'<=' if m_eval <= m_train else '>'} 1 goal)")
        print("  each repeat (train / eval, s): " + ", ".join(f"{x:.2f} / {y:.2f}" for x, y in zip(t_train, t_eval)))
        c_train, c_eval = statistics.median(cpu["train"]), statistics.median(cpu["eval"])
        print(f"  CPU time (user + system) mmib train {c_train:7.2f} s   mmib eval {c_eval:7.2f} s   eval / train  "
              f"{c_eval / c_train:5.2f}  ({'<=' if c_eval <= c_train else '>'} 1 goal)")
        print("  each repeat's CPU (train / eval, s; eval / train): " + ", ".join(
            f"{x:.2f} / {y:.2f}; {y / x:.2f}" for x, y in zip(cpu["train"], cpu["eval"])))
        if len(t_warm) > 1:
            m_warm, c_warm = statistics.median(t_warm[1:]), statistics.median(cpu["warm"][1:])
            print(f"  mmib eval with its caches on (the default), warm (repeats 2-{repeats}: raw-feature probes and "
                  f"raw-features map read back): {m_warm:7.2f} s   eval / train  {m_warm / m_train:5.2f}   CPU "
                  f"{c_warm:7.2f} s   eval / train  {c_warm / c_train:5.2f}")
        print(f"  mmib eval with its caches on, cold (repeat 1): {t_warm[0]:7.2f} s   CPU {cpu['warm'][0]:7.2f} s   (each: "
              f"{', '.join(f'{x:.2f}' for x in t_warm)})")
        for kind, label in (("also", a.also), ("before", f"by {a.before}")):
            if cpu[kind]:
                c = statistics.median(cpu[kind])
                print(f"  CPU time mmib eval {label}: {c:7.2f} s   eval / train  {c / c_train:5.2f}   (each repeat's "
                      f"eval / train: {', '.join(f'{y / x:.2f}' for x, y in zip(cpu['train'], cpu[kind]))})")
        if t_also:
            m_also = statistics.median(t_also)
            print(f"  mmib eval {a.also} (--no-cache): {m_also:7.2f} s   eval / train  {m_also / m_train:5.2f}   "
                  f"(each: {', '.join(f'{x:.2f}' for x in t_also)})")
        if t_before:
            m_before = statistics.median(t_before)
            print(f"  mmib eval by {a.before}: {m_before:7.2f} s   eval / train  {m_before / m_train:5.2f}   "
                  f"that / this eval {m_before / m_eval:5.2f}x   (each: {', '.join(f'{x:.2f}' for x in t_before)})")
        print("  " + _split(run_dir / "bench-eval"))
        _subset_probes(run_dir / "bench-eval", repeats)
    if a.compare:
        _compare([Path(c) for c in a.compare])


if __name__ == "__main__":
    main()
