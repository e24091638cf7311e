"""Forward+backward time and peak memory of the alignment objectives, as ratios to pairwise CLIP in the same run.

    python benchmarks/bench_alignment_objectives.py [--quick] [--threads T] [--repeats R] [--ns 256,1024] [--ms 2,3,4,6]
    python benchmarks/bench_alignment_objectives.py --profile 3,256 [--profile 6,1024 ...]

Grid: N ∈ {256, 1024} (``--quick``: {64, 256}), M ∈ {2, 3, 4, 6}, d = 256, float32, CPU. For every (N, M) the
embeddings are fixed random leaf tensors; each objective is run ``warmup`` times, then timed ``repeats`` times
(median of forward + backward; repeats interleaved round-robin over the objectives so that load changes on a shared
machine hit all of them alike). Two clocks per step: wall clock, and the CPU time of the timing thread
(``time.thread_time``: on a loaded machine it leaves out the time the thread waits for a core; with 1 torch thread
it is the whole work of the step). Also measured side by side:

- ``ova_ib_naive``: OVA-IB with the explicit projection p of Eq. 11 for all N² (anchor, tuple) pairs (vectorized:
  one batched solve per candidate, then an N×N×d tensor of projections) — what the efficient Gram form replaces.
- ``ova_ib`` / ``gram``: the default ``kernel="eager"`` (the fused sweeps' algebra as numba kernels where numba
  imports; compiled or loaded from numba's cache during the warm-up); ``ova_ib_torch`` / ``gram_torch``: the same
  sweeps as PyTorch operations on cache blocks (``kernel="torch"``, the default before numba).
- ``ova_ib_compiled`` / ``gram_compiled``: OVA-IB / GRAM with ``kernel="compiled"`` (the fastest compiled code for the
  device: on the CPU with numba the same numba kernels as the default); ``ova_ib_inductor`` / ``gram_inductor``:
  ``kernel="inductor"`` (the score's elementwise algebra fused by ``torch.compile``; compiled during the warm-up, so
  the compile time is not in the timing).
- ``gram_peer`` / ``triangle_peer`` / ``symile_peer``: re-implementations of the peers' own algorithms, written from
  their papers and documented behaviour (GRAM: N² stacked M×M Gram matrices + ``torch.det``, one anchor; TRIANGLE:
  the N×N×d difference tensors, one anchor; Symile: O(N) negatives from independent row permutations of each
  non-anchor modality, every modality as anchor). "× the authors' code" figures are these, measured in the same run.

``--profile M,N``: instead of the grid, the pass-by-pass profile of one OVA-IB step (``kernel="eager"``) with
``torch.profiler``: every pass of the fused kernel is a labelled range (``mmib.objectives.ova_ib.PROFILE_PASSES``),
its CPU time per step and share of the step is printed next to one pairwise-CLIP step. With ``--profile-ops`` the
operators' self CPU time grouped into passes by name (:data:`OP_GROUPS`), which also profiles an earlier mmib
(``git archive <commit> src/mmib | tar -x -C /tmp/old``, then ``PYTHONPATH=/tmp/old/src``).

**Peak memory.** Measured with ``torch.profiler`` (``profile_memory=True``): every allocation and free of the c10
CPU allocator during one forward+backward is a memory event with its size and time; the peak is the maximum of
their running sum, i.e. the high-water mark of tensor memory allocated *during* the step on top of what existed
before it (the inputs). It counts tensors only (not Python objects or allocator caching), and it is exact for them,
unlike process RSS.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from mmib.objectives import (
    GRAMLoss,
    OVAIBLoss,
    PairwiseCLIPIBLoss,
    PairwiseCLIPLoss,
    SymileLoss,
    TriangleLoss,
)
from mmib.objectives.base import contrastive_ce, l2_normalize


# ---------------------------------------------------------------------------------------------- reference methods
def ova_ib_naive_loss(zs: list[torch.Tensor], temperature: float = 0.01, ridge: float = 1e-8) -> torch.Tensor:
    """OVA-IB sufficiency with the explicit projection p (N×N×d per anchor), vectorized."""
    zs = [l2_normalize(z) for z in zs]
    m = len(zs)
    losses = []
    for a in range(m):
        amat = torch.stack([zs[b] for b in range(m) if b != a], dim=-1)  # (N, d, k)
        k = amat.shape[-1]
        kmat = amat.mT @ amat + ridge * torch.eye(k, dtype=amat.dtype)  # (N, k, k)
        c = torch.einsum("ndk,jd->njk", amat, zs[a])  # c[n', j] = A_{n'}ᵀ z_j  (N', N, k)
        w = torch.linalg.solve(kmat, c.mT).mT  # (N', N, k)
        p = torch.einsum("ndk,njk->njd", amat, w)  # (N', N, d) explicit projections
        cos = (p * zs[a][None]).sum(-1) / p.norm(dim=-1).clamp_min(1e-12)
        losses.append(contrastive_ce(cos.T / temperature))
    return torch.stack(losses).mean()


def gram_peer_loss(zs: list[torch.Tensor], temperature: float = 0.07) -> torch.Tensor:
    """GRAM as its public code computes it: stacked N×N×M×M Gram matrices, torch.det, anchor = modality 0."""
    zs = [l2_normalize(z) for z in zs]
    anchor, others = zs[0], zs[1:]
    n, m = anchor.shape[0], len(zs)
    entries = {}
    for i in range(m):
        for j in range(i, m):
            if i == 0 and j == 0:
                g = (anchor * anchor).sum(-1)[:, None].expand(n, n)
            elif i == 0:
                g = anchor @ others[j - 1].T
            else:
                g = (others[i - 1] * others[j - 1]).sum(-1)[None, :].expand(n, n)
            entries[(i, j)] = entries[(j, i)] = g
    gmat = torch.stack([entries[(i, j)] for i in range(m) for j in range(m)], dim=-1).reshape(n, n, m, m)
    vol = torch.sqrt(torch.abs(torch.det(gmat.float())))
    return 0.5 * (
        contrastive_ce(-vol / temperature, label_smoothing=0.1)
        + contrastive_ce(-vol.T / temperature, label_smoothing=0.1)
    )


def symile_peer_loss(zs: list[torch.Tensor], logit_scale: float = 1.0 / 0.07) -> torch.Tensor:
    """Symile's O(N) negative sampling as its paper and public code describe it: for each anchor, every non-anchor
    modality's rows are permuted independently (global RNG), the permuted embeddings multiplied elementwise give N
    negative tuples, the diagonal is overwritten with the true tuples' MIP; CE over rows, mean over anchors."""
    zs = [l2_normalize(z) for z in zs]
    n, m = zs[0].shape[0], len(zs)
    target = torch.arange(n)
    losses = []
    for a in range(m):
        others = [zs[b] for b in range(m) if b != a]
        neg = others[0][torch.randperm(n)]
        for o in others[1:]:
            neg = neg * o[torch.randperm(n)]
        logits = zs[a] @ neg.T
        pos = zs[a]
        for o in others:
            pos = pos * o
        logits = logits.clone()
        logits[target, target] = pos.sum(-1)
        losses.append(torch.nn.functional.cross_entropy(logit_scale * logits, target))
    return torch.stack(losses).mean()


def triangle_peer_loss(zs: list[torch.Tensor], temperature: float = 0.07) -> torch.Tensor:
    """TRIANGLE as its public code computes it: N×N×d differences, anchor = modality 0."""
    t, v, a = (l2_normalize(z) for z in zs)
    u = t[:, None, :] - v[None, :, :]
    w = t[:, None, :] - a[None, :, :]
    area = ((u**2).sum(2) * (w**2).sum(2) - (u * w).sum(2) ** 2) / 2
    return 0.5 * (
        contrastive_ce(-area / temperature, label_smoothing=0.1)
        + contrastive_ce(-area.T / temperature, label_smoothing=0.1)
    )


# ---------------------------------------------------------------------------------------------- measurement
def make_objectives(n: int, m: int, d: int) -> dict[str, Callable[[list[torch.Tensor]], torch.Tensor]]:
    def wrap(mod: torch.nn.Module) -> Callable[[list[torch.Tensor]], torch.Tensor]:
        return lambda zs: mod({f"m{i}": z for i, z in enumerate(zs)}).loss

    objs: dict[str, Callable[[list[torch.Tensor]], torch.Tensor]] = {
        "clip": wrap(PairwiseCLIPLoss(temperature=0.07)),
        "clip_ib": wrap(PairwiseCLIPIBLoss(temperature=0.07, beta=1.0)),
        "symile_n": wrap(SymileLoss(negatives="n", seed=0)),
        "symile_peer": symile_peer_loss,
    }
    if m == 3 and n <= 256:
        objs["symile_n_squared"] = wrap(SymileLoss(negatives="n_squared"))
    objs["gram"] = wrap(GRAMLoss())
    objs["gram_torch"] = wrap(GRAMLoss(kernel="torch"))
    objs["gram_compiled"] = wrap(GRAMLoss(kernel="compiled"))
    objs["gram_inductor"] = wrap(GRAMLoss(kernel="inductor"))
    objs["gram_1anchor"] = wrap(GRAMLoss(anchor="m0"))
    objs["gram_peer"] = gram_peer_loss
    if m == 3:
        objs["triangle"] = wrap(TriangleLoss())
        objs["triangle_1anchor"] = wrap(TriangleLoss(anchor="m0"))
        objs["triangle_peer"] = triangle_peer_loss
    objs["ova_ib"] = wrap(OVAIBLoss(temperature=0.01, beta=1.0))
    objs["ova_ib_torch"] = wrap(OVAIBLoss(temperature=0.01, beta=1.0, kernel="torch"))
    objs["ova_ib_compiled"] = wrap(OVAIBLoss(temperature=0.01, beta=1.0, kernel="compiled"))
    objs["ova_ib_inductor"] = wrap(OVAIBLoss(temperature=0.01, beta=1.0, kernel="inductor"))
    objs["ova_ib_mlp"] = wrap(OVAIBLoss(projector="mlp", n_modalities=m, embed_dim=d))
    objs["ova_ib_naive"] = ova_ib_naive_loss
    return objs


def step(fn: Callable[[list[torch.Tensor]], torch.Tensor], zs: list[torch.Tensor]) -> None:
    for z in zs:
        z.grad = None
    fn(zs).backward()


#: reference implementations that take seconds per step at N = 1024: timed once there, without warm-up
SLOW_REFERENCES = ("ova_ib_naive", "triangle_peer", "symile_n_squared")


def time_all_ms(objs: dict, zs: list[torch.Tensor], warmup: int, repeats: int) -> dict[str, tuple[float, float]]:
    """Median fwd+bwd (wall, thread CPU) time in ms per objective; the repeats are interleaved round-robin over the
    objectives, so that a change of machine load during the run hits every objective alike (the ratios are what is
    reported)."""
    big = zs[0].shape[0] >= 1024
    for name, fn in objs.items():
        for _ in range(0 if big and name in SLOW_REFERENCES else warmup):
            step(fn, zs)
    ts: dict[str, list[float]] = {name: [] for name in objs}
    cs: dict[str, list[float]] = {name: [] for name in objs}
    for r in range(repeats):
        for name, fn in objs.items():
            if big and name in SLOW_REFERENCES and r > 0:
                continue
            c0, t0 = time.thread_time(), time.perf_counter()
            step(fn, zs)
            ts[name].append(time.perf_counter() - t0)
            cs[name].append(time.thread_time() - c0)
    return {name: (1e3 * statistics.median(ts[name]), 1e3 * statistics.median(cs[name])) for name in objs}


def _profile_setup(m: int, n: int, d: int, repeats: int):
    """The profiled step's inputs, the OVA-IB objective (both warmed up) and pairwise CLIP's best step time (s)."""
    gen = torch.Generator().manual_seed(0)
    zs = [torch.randn(n, d, generator=gen).requires_grad_(True) for _ in range(m)]
    objs = make_objectives(n, m, d)
    clip, ova = objs["clip"], objs["ova_ib"]
    for _ in range(2):
        step(clip, zs)
        step(ova, zs)
    return zs, ova, min(_timed(clip, zs) for _ in range(repeats))


def profile_passes(m: int, n: int, d: int, repeats: int = 5) -> None:
    """Pass-by-pass profile of one OVA-IB step (kernel='eager') with torch.profiler (labelled ranges)."""
    from torch.profiler import ProfilerActivity, profile

    import mmib.objectives.projection.layout as ova_mod

    zs, ova, t_clip = _profile_setup(m, n, d, repeats)
    ova_mod.PROFILE_PASSES = True
    try:
        step(ova, zs)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            t0 = time.perf_counter()
            for _ in range(repeats):
                step(ova, zs)
            t_step = (time.perf_counter() - t0) / repeats
    finally:
        ova_mod.PROFILE_PASSES = False
    rows = [(e.key[len("ova_ib: "):], e.cpu_time_total / repeats / 1e3) for e in prof.key_averages()
            if e.key.startswith("ova_ib: ")]
    rows.sort(key=lambda r: -r[1])
    print(f"OVA-IB (kernel='eager') pass by pass, M = {m}, N = {n}, d = {d}, {torch.get_num_threads()} thread(s), "
          f"CPU time per step (torch.profiler, {repeats} steps; the profiler adds its own overhead)")
    print(f"  {'pass':<48} {'ms':>8} {'% step':>7}")
    for name, t in rows:
        print(f"  {name:<48} {t:>8.2f} {100 * t / (1e3 * t_step):>6.1f}%")
    rest = 1e3 * t_step - sum(t for _, t in rows)
    print(f"  {'rest (normalization, autograd, Python)':<48} {rest:>8.2f} {100 * rest / (1e3 * t_step):>6.1f}%")
    print(f"  {'whole step (profiled)':<48} {1e3 * t_step:>8.2f}")
    print(f"  pairwise CLIP step (not profiled, best of {repeats}): {1e3 * t_clip:.2f} ms")


#: operators of an OVA-IB step grouped into passes for ``--profile-ops`` (works on any version of the code)
OP_GROUPS = {
    "Gram matmuls (mm, addmm), forward + backward": ("aten::mm", "aten::addmm", "aten::addmm_"),
    "elementwise passes (mul, addcmul, add, sub, div, sqrt, ...)": (
        "aten::mul", "aten::mul_", "aten::addcmul", "aten::addcmul_", "aten::add", "aten::add_", "aten::sub",
        "aten::sub_", "aten::div", "aten::div_", "aten::sqrt", "aten::sqrt_", "aten::rsqrt", "aten::reciprocal",
        "aten::reciprocal_", "aten::clamp_min", "aten::clamp_min_", "aten::gt", "aten::neg", "aten::neg_",
        "aten::pow", "aten::sum", "aten::fill_", "aten::zero_", "aten::exp", "aten::exp_", "aten::where"),
    "contractions over anchors (bmm)": ("aten::bmm",),
    "copies (transposes, dtype casts, cat/stack)": ("aten::copy_", "aten::cat", "aten::clone"),
    "cross-entropy (log_softmax, nll, backward)": (
        "aten::_log_softmax", "aten::_log_softmax_backward_data", "aten::nll_loss_forward",
        "aten::nll_loss_backward"),
    "Cholesky + triangular solves (LAPACK)": ("aten::linalg_cholesky_ex", "aten::linalg_solve_triangular"),
}


def profile_ops(m: int, n: int, d: int, repeats: int = 5) -> None:
    """Operator-level profile of one OVA-IB step (kernel='eager'), self CPU time grouped by :data:`OP_GROUPS`."""
    from torch.profiler import ProfilerActivity, profile

    zs, ova, t_clip = _profile_setup(m, n, d, repeats)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t0 = time.perf_counter()
        for _ in range(repeats):
            step(ova, zs)
        t_step = 1e3 * (time.perf_counter() - t0) / repeats
    acc = dict.fromkeys(OP_GROUPS, 0.0)
    for e in prof.key_averages():
        for group, ops in OP_GROUPS.items():
            if e.key in ops:
                acc[group] += e.self_cpu_time_total / repeats / 1e3
    import mmib

    print(f"OVA-IB (kernel='eager') by operator group, M = {m}, N = {n}, d = {d}, mmib from {mmib.__file__}; "
          f"self CPU time per step (torch.profiler, {repeats} steps)")
    for group, t in sorted(acc.items(), key=lambda r: -r[1]):
        print(f"  {group:<62} {t:>8.2f} ms {100 * t / t_step:>5.1f}%")
    rest = t_step - sum(acc.values())
    print(f"  {'rest (other operators, autograd, Python, profiler)':<62} {rest:>8.2f} ms {100 * rest / t_step:>5.1f}%")
    print(f"  {'whole step (profiled)':<62} {t_step:>8.2f} ms")
    print(f"  pairwise CLIP step (not profiled, best of {repeats}): {1e3 * t_clip:.2f} ms")


def _timed(fn, zs) -> float:
    t0 = time.perf_counter()
    step(fn, zs)
    return time.perf_counter() - t0


def peak_mib(fn, zs) -> float:
    from torch.profiler import ProfilerActivity, profile

    step(fn, zs)  # gradients of the inputs exist before the measured step, as in training
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step(fn, zs)
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    cur = peak = 0
    for e in events:
        cur += e.nbytes()
        peak = max(peak, cur)
    return peak / 2**20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="N in {64, 256} only, fewer repeats")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: stable ratios on a shared machine)"
    )
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--ns", default=None, help="comma-separated batch sizes (default 256,1024; --quick: 64,256)")
    ap.add_argument("--ms", default="2,3,4,6", help="comma-separated numbers of modalities (default 2,3,4,6)")
    ap.add_argument("--only", default=None, help="comma-separated objectives to time (clip is always timed)")
    ap.add_argument("--profile", action="append", default=None, metavar="M,N",
                    help="print the pass-by-pass profile of an OVA-IB step at (M, N) instead of the grid")
    ap.add_argument("--profile-ops", action="store_true",
                    help="with --profile: group the profile by operator (works on earlier versions of mmib too)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.profile:
        for cell in args.profile:
            m, n = (int(x) for x in cell.split(","))
            (profile_ops if args.profile_ops else profile_passes)(m, n, args.dim, args.repeats or 5)
            print()
        return
    ns = tuple(int(x) for x in args.ns.split(",")) if args.ns else ((64, 256) if args.quick else (256, 1024))
    ms = tuple(int(x) for x in args.ms.split(","))
    only = None if args.only is None else {"clip", *args.only.split(",")}
    d = args.dim
    import os

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, d = {d}, float32, CPU; "
          f"load average at start {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    print("time = median wall clock of forward+backward; cpu = median CPU time of the timing thread; mem = peak tensor"
          " memory allocated during the step")
    header = (f"{'M':>2} {'N':>5}  {'objective':<18} {'time ms':>9} {'x CLIP':>7} {'cpu ms':>9} {'x CLIP':>7}"
              f" {'mem MiB':>9} {'x CLIP':>7}")
    results: dict[tuple[int, int, str], tuple[float, float]] = {}
    for m in ms:
        for n in ns:
            print()
            print(header)
            print("-" * len(header))
            gen = torch.Generator().manual_seed(0)
            zs = [torch.randn(n, d, generator=gen).requires_grad_(True) for _ in range(m)]
            repeats = args.repeats or (5 if args.quick else (11 if n <= 256 else 5))
            objs = {k: v for k, v in make_objectives(n, m, d).items() if only is None or k in only}
            times = time_all_ms(objs, zs, warmup=1 if n > 256 else 2, repeats=repeats)
            (base_t, base_c), base_m = times["clip"], peak_mib(objs["clip"], zs)
            for name, fn in objs.items():
                (t, c), mem = times[name], (base_m if name == "clip" else peak_mib(fn, zs))
                results[(m, n, name)] = (t, mem, c)
                print(
                    f"{m:>2} {n:>5}  {name:<18} {t:>9.2f} {t / base_t:>7.2f} {c:>9.2f} {c / base_c:>7.2f}"
                    f" {mem:>9.2f} {mem / base_m:>7.2f}", flush=True
                )
    print()
    print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print("OVA-IB efficient vs naive explicit projection (naive / efficient):")
    for m in ms:
        for n in ns:
            if (m, n, "ova_ib_naive") in results:
                tn, mn, _ = results[(m, n, "ova_ib_naive")]
                te, me, _ = results[(m, n, "ova_ib")]
                print(f"  M={m} N={n:>5}: time {tn / te:6.2f}x faster, peak memory {mn / me:7.2f}x smaller")
    print()
    print("Each ratio: one objective's forward+backward over one pairwise-CLIP step (all M(M-1)/2 pairs) at the same"
          " M, N, d, measured in this run, as wall-clock / thread-CPU-time ratios. Targets (issue 24): OVA-IB eager"
          " <= 1.2x at M = 2, <= 1.6x at M = 3, <= 1.4x at M = 4, 6; compiled <= 1.3x at M >= 4; GRAM (all anchors)"
          " <= 1.5x; OVA-IB peak memory <= 2x.")
    for m in ms:
        for n in ns:
            if (m, n, "clip") not in results:
                continue
            t_clip, m_clip, c_clip = results[(m, n, "clip")]
            cells = []
            for name in ("ova_ib", "ova_ib_torch", "ova_ib_compiled", "ova_ib_inductor", "gram", "gram_torch",
                         "gram_compiled", "gram_inductor", "symile_n", "symile_peer"):
                if (m, n, name) in results:
                    t, mem, c = results[(m, n, name)]
                    cells.append(f"{name} {t / t_clip:.2f}x / {c / c_clip:.2f}x"
                                 + (f" (mem {mem / m_clip:.2f}x)" if name.startswith("ova_ib") else ""))
            print(f"  M={m} N={n:>5}: " + ", ".join(cells))
            if (m, n, "symile_peer") in results and (m, n, "symile_n") in results:
                r = results[(m, n, "symile_n")][0] / results[(m, n, "symile_peer")][0]
                print(f"           mmib Symile O(N) / the authors' algorithm (re-implemented) = {r:.2f}")
    key = (5, 256)
    if (*key, "ova_ib") in results:
        t_clip = results[(*key, "clip")][0]
        t_ova, m_ova, _ = results[(*key, "ova_ib")]
        t_nv, m_nv, _ = results[(*key, "ova_ib_naive")]
        print()
        print("Targets at N=256, M=5, d=256:")
        print(f"  OVA-IB fwd+bwd / pairwise CLIP = {t_ova / t_clip:.2f} (target <= 1.5), kernel='eager'")
        if (*key, "ova_ib_compiled") in results:
            t_cmp = results[(*key, "ova_ib_compiled")][0]
            print(f"  OVA-IB fwd+bwd / pairwise CLIP = {t_cmp / t_clip:.2f} (target <= 1.5), kernel='compiled'")
        print(
            f"  naive / OVA-IB time = {t_nv / t_ova:.2f} (target >= 3), peak memory = {m_nv / m_ova:.2f} (target >= 10)"
        )
    if (3, 256, "clip") in results:
        t_clip = results[(3, 256, "clip")][0]
        print("At N=256, M=3, measured in this run (x pairwise CLIP over the M(M-1)/2 = 3 pairs):")
        for name in ("symile_n", "gram", "gram_compiled", "gram_1anchor", "gram_peer", "triangle", "triangle_peer"):
            if (3, 256, name) in results:
                print(f"  {name:<14} {results[(3, 256, name)][0] / t_clip:.2f}x pairwise CLIP")


if __name__ == "__main__":
    main()
