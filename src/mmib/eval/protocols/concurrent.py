"""Protocols side by side: :func:`run_protocols` runs the protocols of one evaluation in a few threads
(``evaluate(jobs=...)``, ``mmib eval --jobs N``), each at one torch thread.

The protocols are independent computations on the same extracted representations, and torch's, numpy's and
scikit-learn's kernels release the GIL, so two protocols on two free cores take about the time of the longer one.
What keeps the results identical to one-after-the-other:

* the probes draw their initial weights from generators of their own (:func:`~mmib.eval.probe.config.seeded_module`),
  never from torch's global one, and their mini-batch order from their own generator as before;
* the method is called (extraction, ``embed``, ``score``) and the shared feature cache changed under
  :attr:`EvalContext.lock <mmib.eval.protocols.context.EvalContext.lock>`, one call at a time;
* each result is put in its place in the given order; a protocol not marked
  :attr:`~mmib.eval.protocols.base.Protocol.concurrent` runs alone after the others.

It lowers the wall time, not the CPU time: without a free core it gains nothing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from mmib.errors import MMIBError
from mmib.eval.protocols.registry import PROTOCOLS, ProtocolSpec, run_protocol

if TYPE_CHECKING:
    from mmib.eval.protocols.context import EvalContext

#: at most this many protocols at once by default: the default protocols hold two long ones (``probe``, ``subsets``)
MAX_DEFAULT_JOBS = 2


def default_jobs() -> int:
    """Protocols run at once when none is said: the cores this process may use, at most :data:`MAX_DEFAULT_JOBS`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_DEFAULT_JOBS, cores))


def check_jobs(jobs: int | None) -> int:
    """``jobs`` as a number >= 1 (None: :func:`default_jobs`)."""
    if jobs is None:
        return default_jobs()
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise MMIBError(f"eval: jobs must be an integer >= 1, got {jobs!r}")
    return jobs


def _concurrent(spec: ProtocolSpec) -> bool:
    unit = PROTOCOLS.unit(spec.kind)
    return bool(unit is not None and unit.concurrent)


def run_protocols(ctx: EvalContext, specs: Sequence[ProtocolSpec], jobs: int = 1) -> list[dict[str, Any]]:
    """The result of each of ``specs`` (:func:`~mmib.eval.protocols.registry.run_protocol`), in their order.

    ``jobs`` 1: one after the other, in order; the first error stops the rest. More: the concurrent protocols in
    ``jobs`` threads (started in the given order), then the others one by one; on an error the protocols not yet
    started are dropped, those running finish, and the error of the first failed protocol (in the given order) is
    raised."""
    together = [s for s in specs if _concurrent(s)] if jobs > 1 else []
    done: dict[str, dict[str, Any]] = _together(ctx, together, jobs) if len(together) > 1 else {}
    for spec in specs:
        if spec.name not in done:
            done[spec.name] = run_protocol(ctx, spec)
    return [done[s.name] for s in specs]


def _together(ctx: EvalContext, specs: Sequence[ProtocolSpec], jobs: int) -> dict[str, dict[str, Any]]:
    with ThreadPoolExecutor(max_workers=min(jobs, len(specs)), thread_name_prefix="mmib-protocol") as pool:
        futures = [pool.submit(_one, ctx, spec) for spec in specs]
        finished, pending = wait(futures, return_when=FIRST_EXCEPTION)
        if pending and any(f.exception() is not None for f in finished):
            for f in pending:
                f.cancel()  # not started yet: dropped; running: they finish
            wait(pending)
    for f in futures:
        if not f.cancelled() and f.exception() is not None:
            raise f.exception()
    return {spec.name: f.result() for spec, f in zip(specs, futures)}


def _one(ctx: EvalContext, spec: ProtocolSpec) -> dict[str, Any]:
    from mmib.eval.probe.config import torch_threads

    with torch_threads(1):  # this thread's own setting: threads side by side do not oversubscribe the cores
        return run_protocol(ctx, spec)
