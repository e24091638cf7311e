"""Run every benchmark script (``benchmarks/bench_*.py``) one after another; extra arguments are passed on
(e.g. ``--quick``). Benchmarks print ratios measured side by side in one run; they are not timed tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    scripts = sorted(here.glob("bench_*.py"))
    if not scripts:
        print("no benchmarks found", file=sys.stderr)
        return 1
    failed = []
    for s in scripts:
        print(f"\n=== {s.name} ===", flush=True)
        r = subprocess.run([sys.executable, str(s), *argv])
        if r.returncode != 0:
            failed.append(s.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
