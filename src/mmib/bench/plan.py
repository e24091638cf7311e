"""The plan of a bench suite: one :class:`PlannedRun` per (method variant, data set, seed of the variant), its folder,
overrides, fingerprint and status (done, evaluate, resume, stale, new, tune), and the selection of runs by name."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmib.bench.overrides import config_fingerprint, run_overrides
from mmib.bench.suite import DataEntry, MethodVariant, Suite, load_suite
from mmib.errors import MMIBError

BENCH_KIND = "mmib-bench"
MARKER = "bench.json"


@dataclass
class PlannedRun:
    variant: MethodVariant
    data: DataEntry
    seed: int
    folder: Path
    overrides: list[str]
    fingerprint: str
    status: str  # done | evaluate | resume | stale | new | tune (waits for its variant's tuning)
    #: the run's record kept in the suite's results file (slim_record) when it was finished elsewhere
    record: dict[str, Any] | None = None

    @property
    def label(self) -> str:
        return f"{self.variant.name} · {self.data.name} · seed {self.seed}"


def default_out_dir(suite: Suite) -> Path:
    return Path("runs") / "bench" / suite.name


def evaluation_spec(suite: Suite, variant: MethodVariant, data: DataEntry) -> Any:
    """What besides the config decides a run's results: the protocols, and — only where given, so that the
    fingerprints of suites without them stay as they were — callbacks and evaluation data."""
    extra = {k: v for k, v in (("callbacks", [*suite.callbacks, *variant.callbacks]), ("eval_data", data.eval_data))
             if v}
    protocols = suite.protocols_for(data.name)
    return {"protocols": protocols, **extra} if extra else protocols


def read_json_record(p: Path) -> dict[str, Any] | None:
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return None


def complete_for(res: dict[str, Any] | None, fingerprint: str) -> bool:
    return bool(res and res.get("complete") and (res.get("bench") or {}).get("fingerprint") == fingerprint)


def run_status(folder: Path, fingerprint: str) -> str:
    """done | evaluate | resume | stale | new (see the module docstring)."""
    if not folder.exists():
        return "new"
    res = read_json_record(folder / "results.json")
    if res and res.get("complete") and (res.get("bench") or {}).get("fingerprint") == fingerprint:
        return "done"
    marker = read_json_record(folder / MARKER)
    if not marker or marker.get("fingerprint") != fingerprint:
        return "stale"
    if not (folder / "checkpoints" / "last.ckpt").is_file():
        return "new"
    run = read_json_record(folder / "run.json") or {}
    return "evaluate" if run.get("finished") else "resume"


def plan_suite(suite: Suite, out_dir: str | os.PathLike | None = None, progress: bool = True,
               previous: dict[str, Any] | None = None, tuned: dict[str, dict] | None = None) -> list[PlannedRun]:
    """Every (variant, data, seed) of the suite with its folder, overrides, fingerprint and status (the seeds of a
    variant: its own ``seeds``, else the suite's).

    Args:
        previous: a suite results file (``results.json`` as written by :func:`run_suite`): the runs it records with
            the planned fingerprint count as done (``record``), and its finished tuning is reused.
        tuned: variant → tuning record (:func:`mmib.bench.tune.tune_suite`); default: the finished studies found in
            ``<out>/tune/`` or ``previous``. A tuned variant without one has status ``tune``.
    """
    from mmib.config import compose_config, to_container

    suite = load_suite(suite)
    out = Path(out_dir) if out_dir is not None else default_out_dir(suite)
    kept = (previous or {}).get("records") or {}
    pending: set[str] = set()
    if suite.tune is not None:
        from mmib.bench.tune import apply_tuning, known_tuning

        if tuned is None:
            tuned = known_tuning(suite, suite.tune, out / "tune", (previous or {}).get("tune"))
        pending = suite.tune.pending(tuned)
        suite = apply_tuning(suite, {v: r["chosen"] for v, r in tuned.items()})
    planned = []
    for data in suite.data:
        for variant in suite.methods:
            if not variant.runs_on(data.name):
                continue
            for seed in suite.seeds_of(variant):
                folder = out / f"{variant.name}-{data.name}-s{seed}"
                if variant.name in pending:
                    planned.append(PlannedRun(variant, data, seed, folder, [], "", "tune"))
                    continue
                ov = run_overrides(suite, variant, data, seed, out, progress)
                cfg = to_container(compose_config(ov))
                fp = config_fingerprint(cfg, evaluation_spec(suite, variant, data))
                status = run_status(folder, fp)
                record = kept.get(folder.name)
                if status != "done" and complete_for(record, fp):
                    status = "done"
                elif status == "done" or not (record or {}).get("complete"):
                    record = None
                # else: a record of an earlier configuration, reported as such until the run is redone
                planned.append(PlannedRun(variant, data, seed, folder, ov, fp, status, record))
    return planned


def select_runs(suite: Suite, plan: list[PlannedRun], methods: Sequence[str] | None = None,
                data: Sequence[str] | None = None, seeds: Sequence[int] | None = None) -> list[PlannedRun]:
    """The planned runs restricted to some method variants, data entries and seeds (None: all).

    Raises:
        MMIBError: a name or seed that is not in the suite (the message lists the valid ones).
    """
    def check(given, valid, what):
        if given is None:
            return None
        given = list(given)
        bad = [g for g in given if g not in valid]
        if bad:
            raise MMIBError(f"bench {suite.name}: unknown {what} {bad}; the suite has {list(valid)}")
        return set(given)

    m = check(methods, [v.name for v in suite.methods], "method variant(s)")
    d = check(data, [e.name for e in suite.data], "data entry(ies)")
    # a seed only some variants run (their own ``seeds``) selects those variants' runs of it
    s = check([int(x) for x in seeds] if seeds is not None else None, suite.all_seeds(), "seed(s)")
    return [r for r in plan if (m is None or r.variant.name in m) and (d is None or r.data.name in d)
            and (s is None or r.seed in s)]
