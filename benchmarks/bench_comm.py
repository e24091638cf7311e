"""CoMM's objective, forward + backward, as a ratio to pairwise CLIP measured side by side in the same run.

N = 256 samples, d = 256, M = 2 modalities → three terms (L, L_1, L_2). Three implementations are timed:

* ``clip``: :class:`~mmib.objectives.clip.PairwiseCLIPLoss` on two modalities (the unit);
* ``comm``: :class:`~mmib.objectives.comm.CoMMLoss` (shared Gram blocks, log-sum-exp per block);
* ``comm_per_term``: :meth:`CoMMLoss.reference`, one NT-Xent (2N × 2N logits) per direction, as the authors' code
  computes it (the reference for "the peer's CoMM loss"; the "5.5× CLIP" quoted for it was measured at M = 3
  against a 3-modality CLIP, not at this benchmark's M = 2).

    .venv/bin/python benchmarks/bench_comm.py [--n 256] [--d 256] [--repeats 30] [--threads 1] [--quick]

``--quick`` (as ``benchmarks/run_all.py --quick`` passes it to every benchmark): 5 repeats.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from mmib.objectives.clip import PairwiseCLIPLoss
from mmib.objectives.comm import CoMMLoss


def _leaves(n: int, d: int, k: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, d, generator=g).requires_grad_(True) for _ in range(k)]


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description="CoMM objective vs pairwise CLIP, forward + backward")
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="5 repeats (run_all.py --quick)")
    a = ap.parse_args(argv)
    if a.quick:
        a.repeats = min(a.repeats, 5)
    torch.set_num_threads(a.threads)
    clip, comm = PairwiseCLIPLoss(temperature=0.1), CoMMLoss(temperature=0.1)
    x_clip = _leaves(a.n, a.d, 2, 0)
    x_comm = _leaves(a.n, a.d, 6, 1)

    def run_clip():
        torch.autograd.grad(clip({"a": x_clip[0], "b": x_clip[1]}).loss, x_clip)

    def comm_args():
        return (x_comm[0], x_comm[1]), {"a": (x_comm[2], x_comm[3]), "b": (x_comm[4], x_comm[5])}

    def run_comm():
        torch.autograd.grad(comm(*comm_args()).loss, x_comm)

    def run_ref():
        torch.autograd.grad(comm.reference(*comm_args()).loss, x_comm)

    fns = {"clip": run_clip, "comm": run_comm, "comm_per_term": run_ref}
    for f in fns.values():  # warm-up
        for _ in range(3):
            f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(a.repeats):  # interleaved so that load changes hit every implementation alike
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"N={a.n} d={a.d} M=2 (3 CoMM terms), threads={a.threads}, {a.repeats} interleaved repeats, median:")
    for k, v in med.items():
        print(f"  {k:<14} {1e3 * v:8.2f} ms   {v / med['clip']:5.2f} x clip")
    return {k: v / med["clip"] for k, v in med.items()}


if __name__ == "__main__":
    main()
