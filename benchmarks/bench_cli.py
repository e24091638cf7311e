"""Wall time of the instant commands ``mmib --help``, ``mmib methods``, ``mmib data list``, ``mmib experiments``:
each run as a fresh process (the ``mmib`` script of this interpreter's environment, else ``python -m mmib.cli``),
one warm-up run, then the median of ``--repeats`` runs (interleaved across the commands). Goal: <= 1.5 s each on
2 cores. The machine's load average and core count are printed with the times: a loaded machine reads slower.

    .venv/bin/python benchmarks/bench_cli.py [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = (["--help"], ["methods"], ["data", "list"], ["experiments"])
GOAL_S = 1.5


def _launcher() -> list[str]:
    script = Path(sys.executable).with_name("mmib")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mmib.cli"]


def _time(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description="wall time of mmib's instant commands")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="accepted for benchmarks/run_all.py; same as the default")
    a = ap.parse_args(argv)
    launch = _launcher()
    for c in COMMANDS:  # warm-up: file system caches, .pyc files
        _time(launch + c)
    times: dict[str, list[float]] = {" ".join(c): [] for c in COMMANDS}
    load_before = os.getloadavg()
    for _ in range(a.repeats):
        for c in COMMANDS:
            times[" ".join(c)].append(_time(launch + c))
    load_after = os.getloadavg()
    print(f"{'mmib' if len(launch) == 1 else 'python -m mmib.cli'} ...: median of "
          f"{a.repeats} runs per command (fresh process each), {os.cpu_count()} cores, load average (1 min) "
          f"{load_before[0]:.2f} before / {load_after[0]:.2f} after")
    medians = {}
    for name, ts in times.items():
        med = statistics.median(ts)
        medians[name] = med
        print(f"  mmib {name:<14} {med:6.2f} s  (min {min(ts):.2f}, max {max(ts):.2f})  "
              f"{'<=' if med <= GOAL_S else '>'} {GOAL_S} s goal")
    return medians


if __name__ == "__main__":
    main()
