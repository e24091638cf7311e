"""The elementwise algebra of the fused sweeps as numba kernels (``kernel="eager"`` when numba imports): OVA-IB's
sufficiency sweep (:func:`ova_sweep`, for :class:`mmib.objectives.projection.one_vs_all._OneVsAllSufficiency`) and
the one-vs-rest tuple factors (:func:`tuple_factors`, :func:`row_grams`); GRAM's two passes are in
:mod:`mmib.objectives.projection.numba_gram`.

Why: the pure-torch loop (``kernel="torch"``) runs the ~30 elementwise operations per (anchor row, candidate) as
separate ATen calls on cache blocks, each streaming its operands through memory, plus a Python loop over the blocks;
``torch.compile`` fuses them but needs a C++ compiler at run time. numba (LLVM, shipped as a wheel: no system
compiler) compiles the same algebra once; each anchor row is two passes over its N candidates whose innermost
loops run over contiguous candidates (LLVM vectorizes them), with the row's intermediates in small buffers that stay
in the L1/L2 cache: the N×N cross entries are read once and overwritten once by their gradient.

The kernels are specialised per dtype (float32 and float64: the float64 reference tests run them in float64) and
cached on disk (``cache=True``: next to this module, or in ``NUMBA_CACHE_DIR``; where neither is writable numba
compiles in memory at the first call of each process). ``fastmath`` is limited to reassociation, contraction,
reciprocal and signed-zero freedom (no ``nnan`` / ``ninf``: the kernels clamp and mask as the torch loop does).

:func:`available` is False when numba does not import; then ``kernel="eager"`` runs the torch loop. numba is
imported at the first call of a kernel, not with mmib.
"""

from __future__ import annotations

import importlib.util
import threading

import numpy as np

from mmib.objectives.projection.fused import EPS2  # the squared-norm floor of the torch kernels

#: LLVM fast-math flags of the kernels: reassociation (vectorized reductions), FMA contraction, reciprocal
#: multiplication and signed zeros; never 'nnan' / 'ninf' (degenerate rows are clamped, not assumed away)
FASTMATH = {"reassoc", "contract", "arcp", "nsz"}


_LOCK = threading.Lock()
_JITTED: dict[str, object] = {}
_STATE: list[bool] = []  # [whether numba imported], once tried


def available() -> bool:
    """Whether the numba kernels can run: numba imports (tried once per process, at the first call, so that
    importing mmib does not import numba)."""
    with _LOCK:
        if not _STATE:
            ok = importlib.util.find_spec("numba") is not None
            if ok:
                try:
                    import numba  # noqa: F401
                except Exception:  # noqa: BLE001 - a broken numba install means: the torch loop
                    ok = False
            _STATE.append(ok)
        return _STATE[0]


def use_numba(kernel: str, t) -> bool:
    """Whether a fused sweep with kernel name ``kernel`` runs its algebra here for inputs like the tensor ``t``:
    ``"eager"`` or ``"compiled"``, on the CPU, float32 or float64, and numba imports (:func:`available`)."""
    return (kernel in ("eager", "compiled") and t.device.type == "cpu" and str(t.dtype) in ("torch.float32", "torch.float64")
            and available())


def jitted(fn):
    """``fn`` compiled by numba (once per process; numba compiles per dtype at the first call, or loads the
    compiled code from its on-disk cache)."""
    name = f"{fn.__module__}.{fn.__qualname__}"
    jitted = _JITTED.get(name)
    if jitted is None:
        import numba

        opts = dict(fastmath=FASTMATH, nogil=True, error_model="numpy", boundscheck=False)
        try:
            jitted = numba.njit(cache=True, **opts)(fn)
        except RuntimeError:  # no writable cache location: compile in memory
            jitted = numba.njit(**opts)(fn)
        with _LOCK:
            jitted = _JITTED.setdefault(name, jitted)
    return jitted


def _ova_rows(cross, linv, kinv, zb_inv, lam, pid, need_grad, loss_rows, rowdot, acc):  # noqa: C901
    """The body of :func:`ova_sweep` (arguments as there)."""
    m, k, n = cross.shape[0], cross.shape[1], cross.shape[3]
    dt = cross.dtype
    y = np.empty((k, n), dt)
    w = np.empty((k, n), dt)
    e1 = np.empty((k, n), dt)
    eh = np.empty((k, n), dt)
    q = np.empty(n, dt)
    pp = np.empty(n, dt)
    lg = np.empty(n, dt)
    iv = np.empty(n, dt)
    hf = np.empty(n, dt)
    ex = np.empty(n, dt)
    g = np.empty(n, dt)
    eps2 = dt.type(EPS2)
    zero = dt.type(0.0)
    half = dt.type(0.5)
    lam_t = dt.type(lam)
    hlam = dt.type(0.5 * lam)
    for a in range(m):
        for r in range(n):
            # pass 1: y = L⁻¹c, q1 = ‖y‖², w = L⁻ᵀy = K⁻¹c, P = q1 − λ‖w‖² (clamped), logits = scale·s
            for i in range(k):
                yi = y[i]
                lij = linv[a, i, 0]
                c0 = cross[a, 0, r]
                for t in range(n):
                    yi[t] = lij[t] * c0[t]
                for j in range(1, i + 1):
                    lij = linv[a, i, j]
                    cj = cross[a, j, r]
                    for t in range(n):
                        yi[t] += lij[t] * cj[t]
            y0 = y[0]
            for t in range(n):
                q[t] = y0[t] * y0[t]
            for i in range(1, k):
                yi = y[i]
                for t in range(n):
                    q[t] += yi[t] * yi[t]
            for i in range(k):
                wi = w[i]
                lii = linv[a, i, i]
                yi = y[i]
                for t in range(n):
                    wi[t] = lii[t] * yi[t]
                for j in range(i + 1, k):
                    lji = linv[a, j, i]
                    yj = y[j]
                    for t in range(n):
                        wi[t] += lji[t] * yj[t]
            for t in range(n):
                pp[t] = q[t]
            for i in range(k):
                wi = w[i]
                for t in range(n):
                    pp[t] -= lam_t * wi[t] * wi[t]
            zb = zb_inv[a, r]
            for t in range(n):
                p = pp[t]
                ok = p > eps2
                p = p if ok else eps2
                inv = zb / np.sqrt(p)
                lt = q[t] * inv
                iv[t] = inv
                lg[t] = lt
                hf[t] = lt / p if ok else zero
            # the row's log-softmax (the target on the diagonal; excluded from the sum unless pid)
            pos = lg[r]
            if not pid:
                lg[r] = -np.inf
            mx = lg[0]
            for t in range(1, n):
                mx = max(mx, lg[t])
            s = zero
            for t in range(n):
                et = np.exp(lg[t] - mx)
                ex[t] = et
                s += et
            if not pid:
                lg[r] = pos
            lse = mx + np.log(s)
            loss_rows[a, r] = lse - pos
            if not need_grad:
                continue
            # pass 2: g = softmax − onehot, gh = g·s/P (0 where P was clamped), g₁ = g/(‖z‖√P) − gh/2
            rs = dt.type(1.0) / s
            for t in range(n):
                g[t] = ex[t] * rs
            g[r] -= dt.type(1.0)
            rd = zero
            for t in range(n):
                gt = g[t]
                rd += gt * lg[t]
                ght = hf[t] * gt
                hf[t] = ght
                g[t] = gt * iv[t] - half * ght
            rowdot[a, r] = rd
            for i in range(k):
                wi = w[i]
                e1i = e1[i]
                ehi = eh[i]
                for t in range(n):
                    e1i[t] = g[t] * wi[t]
                    ehi[t] = hf[t] * wi[t]
            p_ = 0
            for j in range(k):
                wj = w[j]
                for i in range(j + 1):
                    a0 = acc[a, 0, p_]
                    a1 = acc[a, 1, p_]
                    e1i = e1[i]
                    ehi = eh[i]
                    for t in range(n):
                        a0[t] += e1i[t] * wj[t]
                        a1[t] += ehi[t] * wj[t]
                    p_ += 1
            # ∂/∂c_i (half, per unit of 1/N) = g₁ w_i + (λ/2) gh v_i with v = K⁻¹w: into the cross entries
            for i in range(k):
                out = cross[a, i, r]
                kij = kinv[a, i, 0]
                w0 = w[0]
                for t in range(n):
                    q[t] = kij[t] * w0[t]
                for j in range(1, k):
                    kij = kinv[a, i, j]
                    wj = w[j]
                    for t in range(n):
                        q[t] += kij[t] * wj[t]
                e1i = e1[i]
                for t in range(n):
                    out[t] = e1i[t] + hlam * hf[t] * q[t]


def ova_sweep(cross, linv, kinv, zb_inv, lam, positive_in_denominator, need_grad, loss_rows, rowdot, acc):
    """OVA-IB's sufficiency sweep over every anchor row (numpy arrays of one dtype, float32 or float64, C order).

    ``cross`` (M, k, N, N): the cross entries of every anchor (anchor-major), overwritten by half their gradient
    per unit of 1/N, scale·(g₁ w + (λ/2) gh v), when ``need_grad``; ``linv`` (M, k, k, N): L⁻¹ per candidate
    (lower triangle read); ``kinv`` (M, k, k, N): K⁻¹ per candidate; ``zb_inv`` (M, N): scale/‖z‖. Writes
    ``loss_rows`` (M, N) (the rows' cross-entropies), ``rowdot`` (M, N) (Σ_t (softmax − onehot)·scale·s) and adds
    to ``acc`` (M, 2, k(k+1)/2, N) the column sums of scale·g₁ w_i w_j and scale·gh w_i w_j (pairs i ≤ j in
    column-major order of the upper triangle, as the torch loop)."""
    jitted(_ova_rows)(cross, linv, kinv, zb_inv, float(lam), bool(positive_in_denominator), bool(need_grad),
                       loss_rows, rowdot, acc)


def _factor_rows(full, others, ridge, linv, kin, kinv64, det):
    """The body of :func:`tuple_factors` (arguments as there); returns False if a K is not positive definite."""
    n, m = full.shape[0], full.shape[1]
    k = m - 1
    el = np.zeros((k, k))
    li = np.zeros((k, k))
    ok = True
    for a in range(m):
        oth = others[a]
        for t in range(n):
            ft = full[t]
            for j in range(k):  # Cholesky K = L Lᵀ (K = the other modalities' Gram matrix + ridge I), as factor.py
                piv = ft[oth[j], oth[j]] + ridge
                for p in range(j):
                    piv -= el[j, p] * el[j, p]
                if not piv > 0.0:  # also False for NaN
                    ok = False
                    piv = 1e-300
                ljj = np.sqrt(piv)
                el[j, j] = ljj
                rinv = 1.0 / ljj
                for i in range(j + 1, k):
                    s = ft[oth[i], oth[j]]
                    for p in range(j):
                        s -= el[i, p] * el[j, p]
                    el[i, j] = s * rinv
            dk = 1.0
            for i in range(k):  # L⁻¹ by forward substitution; det K = Π L_ii²
                rdiag = 1.0 / el[i, i]
                for j in range(i):
                    s = el[i, j] * li[j, j]
                    for p in range(j + 1, i):
                        s += el[i, p] * li[p, j]
                    li[i, j] = -(s * rdiag)
                li[i, i] = rdiag
                dk *= el[i, i] * el[i, i]
            det[a, t] = dk
            for i in range(k):
                for j in range(i + 1):
                    linv[a, i, j, t] = li[i, j]
                    e = li[i, i] * li[i, j]  # (K⁻¹)_ij = Σ_{p ≥ i} (L⁻¹)_pi (L⁻¹)_pj, j ≤ i
                    for p in range(i + 1, k):
                        e += li[p, i] * li[p, j]
                    kinv64[a, t, i, j] = e
                    kinv64[a, t, j, i] = e
                    kin[a, i, j, t] = e
                    kin[a, j, i, t] = e
    return ok


def tuple_factors(full, others, ridge, linv, kin, kinv64, det):
    """The factors of the M one-vs-rest tuples from the per-row Gram matrices ``full`` (N, M, M) (float64):
    K = full[others[a]][:, others[a]] + ridge·I per anchor a and candidate t (``others`` (M, k) int64), Cholesky
    K = L Lᵀ entry by entry as :func:`mmib.objectives.projection.factor.inverse_factor_entries_kkb`. Writes ``linv``
    (M, k, k, N) (L⁻¹, lower triangle; the sweeps' dtype), ``kin`` (M, k, k, N) (K⁻¹, the sweeps' dtype),
    ``kinv64`` (M, N, k, k) (K⁻¹, float64) and ``det`` (M, N) (det K, float64). Returns False if a K is not
    positive definite (NaN or inf embeddings)."""
    return bool(jitted(_factor_rows)(full, others, float(ridge), linv, kin, kinv64, det))


def _row_gram_rows(zstack, full):
    """The body of :func:`row_grams`."""
    n, m, d = zstack.shape
    for t in range(n):
        for a in range(m):
            za = zstack[t, a]
            for b in range(a + 1):
                zb = zstack[t, b]
                s = 0.0
                for i in range(d):
                    s += np.float64(za[i]) * np.float64(zb[i])
                full[t, a, b] = s
                full[t, b, a] = s


def row_grams(zstack, full):
    """The per-row Gram matrices ``full`` (N, M, M) in float64 of the stacked embeddings ``zstack`` (N, M, d)
    (float32 or float64; the products of float32 entries are exact in float64), in one pass (no float64 copy of
    the embeddings, no batched product of tiny matrices)."""
    jitted(_row_gram_rows)(zstack, full)
