"""Slow, obviously-correct float64 loop references for the alignment objectives (no vectorization, no shared code
with ``mmib.objectives``)."""

from __future__ import annotations

import itertools
import math

import torch


def unit(v: torch.Tensor) -> torch.Tensor:
    n = torch.sqrt((v * v).sum())
    return v / n if float(n.detach()) > 1e-8 else v * 0.0


def row_ce(
    scores: list[torch.Tensor], target: int, positive_in_denominator: bool = True, smoothing: float = 0.0
):
    """−log softmax(scores)[target] (with optional label smoothing), or the decoupled form."""
    if positive_in_denominator:
        lse = torch.logsumexp(torch.stack(scores), 0)
        nll = [lse - s for s in scores]
        return (1 - smoothing) * nll[target] + smoothing * sum(nll) / len(nll)
    others = [s for i, s in enumerate(scores) if i != target]
    return torch.logsumexp(torch.stack(others), 0) - scores[target]


def infonce(score, n_rows: int, n_cols: int, pid: bool = True, smoothing: float = 0.0, target=lambda r: r):
    """mean over rows r of row_ce([score(r, c) for c], target(r))."""
    total = 0.0
    for r in range(n_rows):
        total = total + row_ce([score(r, c) for c in range(n_cols)], target(r), pid, smoothing)
    return total / n_rows


def clip_loss(zs, tau, reduction="mean", pid=True):
    zs = [[unit(z[i]) for i in range(z.shape[0])] for z in zs]
    n = len(zs[0])
    pairs = list(itertools.combinations(range(len(zs)), 2))
    total = 0.0
    for i, j in pairs:
        ab = infonce(lambda r, c, i=i, j=j: torch.dot(zs[i][r], zs[j][c]) / tau, n, n, pid)
        ba = infonce(lambda r, c, i=i, j=j: torch.dot(zs[j][r], zs[i][c]) / tau, n, n, pid)
        total = total + 0.5 * (ab + ba)
    return total / len(pairs) if reduction == "mean" else total


def clip_ib_loss(zs, tau, beta, reduction="mean", pid=True):
    align = clip_loss(zs, tau, reduction, pid)
    us = [[unit(z[i]) for i in range(z.shape[0])] for z in zs]
    n = len(us[0])
    pairs = list(itertools.combinations(range(len(zs)), 2))
    mini = 0.0
    for i, j in pairs:
        mini = mini + (1 - sum(torch.dot(us[i][r], us[j][r]) for r in range(n)) / n)
    if reduction == "mean":
        mini = mini / len(pairs)
    return align + beta * mini


def projection(z: torch.Tensor, vectors: list[torch.Tensor], ridge: float) -> torch.Tensor:
    """Explicit p = A (AᵀA + λI)^{-1} Aᵀ z of Eq. 11."""
    a = torch.stack(vectors, dim=1)
    k = a.shape[1]
    return a @ torch.linalg.solve(a.T @ a + ridge * torch.eye(k, dtype=a.dtype), a.T @ z)


def projection_cos(z, vectors, ridge):
    p = projection(z, vectors, ridge)
    zn, pn = torch.sqrt((z * z).sum()), torch.sqrt((p * p).sum())
    if float(zn.detach()) < 1e-10 or float(pn.detach()) < 1e-10:
        return (z * p).sum() * 0.0
    return (z * p).sum() / (zn * pn)


def ova_ib_loss(zs, tau, beta, ridge=1e-8, pid=True):
    us = [[unit(z[i]) for i in range(z.shape[0])] for z in zs]
    m, n = len(us), len(us[0])
    suff = 0.0
    for a in range(m):
        others = [b for b in range(m) if b != a]
        suff = suff + infonce(
            lambda r, c, a=a, others=others: (
                projection_cos(us[a][r], [us[b][c] for b in others], ridge) / tau
            ),
            n,
            n,
            pid,
        )
    suff = suff / m
    mini = 0.0
    for a in range(m):
        acc = 0.0
        for r in range(n):
            mean_others = sum(us[b][r] for b in range(m) if b != a) / (m - 1)
            diff = us[a][r] - mean_others
            acc = acc + (diff * diff).sum()
        mini = mini + acc / n
    mini = mini / m
    return suff + beta * mini, suff, mini


def volume(vectors: list[torch.Tensor], ridge: float = 0.0) -> torch.Tensor:
    """sqrt(max(det G, 1e-20)), G = AᵀA with ``ridge`` added to the diagonal of every vector but the first (the
    anchor): the regularizer GRAM's kernel applies to the tuple's Gram matrix before factoring it."""
    a = torch.stack(vectors, dim=1)
    g = a.T @ a
    if ridge:
        g = g + ridge * torch.diag(torch.tensor([0.0] + [1.0] * (len(vectors) - 1), dtype=a.dtype))
    return torch.sqrt(torch.clamp(torch.det(g), min=1e-20))


def gram_loss(zs, tau, smoothing=0.1, anchors=None, pid=True, ridge=0.0):
    us = [[unit(z[i]) for i in range(z.shape[0])] for z in zs]
    m, n = len(us), len(us[0])
    anchors = range(m) if anchors is None else anchors
    total = 0.0
    for a in anchors:
        others = [b for b in range(m) if b != a]

        def vol(r, c, a=a, others=others):  # anchor row r, tuple of sample c
            return volume([us[a][r]] + [us[b][c] for b in others], ridge)

        fwd = infonce(lambda r, c: -vol(r, c) / tau, n, n, pid, smoothing)
        bwd = infonce(lambda r, c: -vol(c, r) / tau, n, n, pid, smoothing)
        total = total + 0.5 * (fwd + bwd)
    return total / len(list(anchors))


def area(t, v, a):
    u, w = t - v, t - a
    return ((u * u).sum() * (w * w).sum() - (u * w).sum() ** 2) / 2


def triangle_loss(zs, tau, smoothing=0.1, pid=True):
    us = [[unit(z[i]) for i in range(z.shape[0])] for z in zs]
    n = len(us[0])
    total = 0.0
    for a in range(3):
        b, c_ = [x for x in range(3) if x != a]

        def ar(r, c, a=a, b=b, c_=c_):
            return area(us[a][r], us[b][c], us[c_][c])

        total = total + 0.5 * (
            infonce(lambda r, c: -ar(r, c) / tau, n, n, pid, smoothing)
            + infonce(lambda r, c: -ar(c, r) / tau, n, n, pid, smoothing)
        )
    return total / 3


def symile_n_squared_loss(zs, tau, pid=True, factor=1.0):
    """Symile with all N^(M−1) negatives; logits = factor · MIP / τ."""
    us = [[unit(z[i]) for i in range(z.shape[0])] for z in zs]
    m, n = len(us), len(us[0])
    total = 0.0
    for a in range(m):
        others = [b for b in range(m) if b != a]
        combos = list(itertools.product(range(n), repeat=len(others)))
        rows = 0.0
        for r in range(n):
            scores = []
            for combo in combos:
                prod = us[a][r].clone()
                for b, j in zip(others, combo):
                    prod = prod * us[b][j]
                scores.append(factor * prod.sum() / tau)
            rows = rows + row_ce(scores, combos.index(tuple([r] * len(others))), pid)
        total = total + rows / n
    return total / m


def symile_n_loss(zs, tau, seed, pid=True, factor=1.0):
    """O(N) negatives with permutations drawn as documented: per anchor, one randperm per other modality in order;
    logits = factor · MIP / τ."""
    us = [[unit(z[i]) for i in range(z.shape[0])] for z in zs]
    m, n = len(us), len(us[0])
    gen = torch.Generator().manual_seed(seed)
    total = 0.0
    for a in range(m):
        others = [b for b in range(m) if b != a]
        perms = {b: torch.randperm(n, generator=gen).tolist() for b in others}
        rows = 0.0
        for r in range(n):
            scores = []
            for c in range(n):
                prod = us[a][r].clone()
                for b in others:
                    prod = prod * (us[b][r] if c == r else us[b][perms[b][c]])
                scores.append(factor * prod.sum() / tau)
            rows = rows + row_ce(scores, r, pid)
        total = total + rows / n
    return total / m


def log_n(n: int) -> float:
    return math.log(n)


def assert_matches(loss, expected, inputs, rtol=1e-7, atol=1e-9):
    """Values and gradients (w.r.t. ``inputs``) of a loss against its reference."""
    torch.testing.assert_close(loss, expected, rtol=rtol, atol=atol)
    g = torch.autograd.grad(loss, inputs, retain_graph=True)
    g_ref = torch.autograd.grad(expected, inputs, retain_graph=True)
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, rtol=rtol * 100, atol=atol * 100)


def nt_xent_ref(a: torch.Tensor, b: torch.Tensor, tau: float) -> torch.Tensor:
    """SimCLR NT-Xent by loops (stable log-sum-exp): 2N anchors, the 2N − 1 other rows as candidates."""
    z = [unit(v) for v in a] + [unit(v) for v in b]
    n = a.shape[0]
    total = 0.0
    for i in range(2 * n):
        p = i + n if i < n else i - n
        cands = [k for k in range(2 * n) if k != i]
        total = total + row_ce([torch.dot(z[i], z[k]) / tau for k in cands], cands.index(p))
    return total / (2 * n)


def supcon_ref(views: list[torch.Tensor], labels, tau: float, base: float | None = None) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al. Eq. 2) by loops: positives = same label (or same sample)."""
    n = views[0].shape[0]
    items = [(unit(v[i]), int(labels[i]) if labels is not None else i) for v in views for i in range(n)]
    total = 0.0
    for a, (za, la) in enumerate(items):
        others = [k for k in range(len(items)) if k != a]
        scores = [torch.dot(za, items[k][0]) / tau for k in others]
        lse = torch.logsumexp(torch.stack(scores), 0)
        pos = [j for j, k in enumerate(others) if items[k][1] == la]
        total = total + sum(lse - scores[j] for j in pos) / len(pos)
    loss = total / len(items)
    return loss * (tau / base) if base else loss


def info_nce_ref(za: torch.Tensor, zb: torch.Tensor, tau: float) -> torch.Tensor:
    """Symmetric InfoNCE of two views (cosines / τ, diagonal positives): mean of the two directions."""
    ua, ub = [unit(v) for v in za], [unit(v) for v in zb]
    n = len(ua)
    ab = infonce(lambda r, c: torch.dot(ua[r], ub[c]) / tau, n, n)
    ba = infonce(lambda r, c: torch.dot(ub[r], ua[c]) / tau, n, n)
    return 0.5 * (ab + ba)
