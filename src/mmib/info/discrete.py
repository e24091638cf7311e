"""Information measures of discrete distributions, partial information decomposition (via ``dit``), and a plug-in
for continuous representations through a documented discretization.

A distribution is a joint probability table: a numpy array with one axis per variable (``joint[a, b, c] =
P(X=a, Y=b, Z=c)``), non-negative and summing to 1. A *variable* argument is an axis index or a tuple of axes
(a group treated as one variable). Build tables from samples with :func:`joint_from_samples`.

Units: ``base=math.e`` (nats) by default, like the rest of :mod:`mmib.info`; pass ``base=2`` for bits (the unit
of spec D.0.2 and of ``dit``). Entropies use ``scipy.special.entr``; the PID is ``dit``'s (Williams & Beer 2010
``I_min``, Bertschinger et al. 2014 "BROJA", and the other measures ``dit.pid`` provides).

Conventions (Cover & Thomas; McGill 1954; Watanabe 1960; Han 1978):

- co-information ``I(X1;...;Xn) = -Σ_{S ⊆ V, S ≠ ∅} (-1)^{|S|} H(S)``; for three variables
  ``I(X;Y;Z) = I(X;Y) - I(X;Y|Z)`` (FactorCL's shared term S, spec A.1; can be negative).
- total correlation ``TC = Σ_i H(X_i) - H(X_1..X_n)``; dual total correlation ``DTC = H(X) - Σ_i H(X_i | X_-i)``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.special import entr

from mmib.errors import UnknownNameError

Variable = int | Sequence[int]


def check_joint(joint, name: str = "joint") -> np.ndarray:
    """A valid joint probability table as float64 (non-negative, finite, sums to 1 within 1e-6)."""
    p = np.asarray(joint, dtype=np.float64)
    if p.ndim < 1 or p.size == 0:
        raise ValueError(f"{name} must be a non-empty probability table with one axis per variable, got shape {p.shape}")
    if not np.isfinite(p).all():
        raise ValueError(f"{name} contains NaN or inf")
    if (p < 0).any():
        raise ValueError(f"{name} has negative probabilities")
    if abs(p.sum() - 1.0) > 1e-6:
        raise ValueError(f"{name} must sum to 1, sums to {p.sum():.6g}")
    return p


def _axes(var, ndim: int, name: str) -> tuple[int, ...]:
    axes = (var,) if isinstance(var, (int, np.integer)) else tuple(var)
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or not -ndim <= a < ndim:
            raise ValueError(f"{name} must be axes of the joint table (0..{ndim - 1}), got {var!r}")
        out.append(int(a) % ndim)
    if not out:
        raise ValueError(f"{name} must name at least one axis")
    return tuple(out)


def _h(p: np.ndarray, axes: Sequence[int], base: float) -> float:
    """Entropy of the marginal of ``p`` on ``axes`` (empty axes: 0)."""
    axes = sorted(set(axes))
    if not axes:
        return 0.0
    drop = tuple(a for a in range(p.ndim) if a not in axes)
    m = p.sum(axis=drop) if drop else p
    return float(entr(m).sum() / math.log(base))


def _check_base(base: float) -> float:
    if not (isinstance(base, (int, float)) and base > 0 and base != 1 and math.isfinite(base)):
        raise ValueError(f"base must be a finite number > 0 and != 1 (e for nats, 2 for bits), got {base!r}")
    return float(base)


def entropy(joint, variables: Variable | None = None, base: float = math.e) -> float:
    """Shannon entropy of the marginal on ``variables`` (default: all axes)."""
    p = check_joint(joint)
    base = _check_base(base)
    axes = tuple(range(p.ndim)) if variables is None else _axes(variables, p.ndim, "variables")
    return _h(p, axes, base)


def mutual_information(joint, x: Variable = 0, y: Variable = 1, base: float = math.e) -> float:
    """``I(X;Y) = H(X) + H(Y) - H(X,Y)``."""
    p = check_joint(joint)
    base = _check_base(base)
    ax, ay = _axes(x, p.ndim, "x"), _axes(y, p.ndim, "y")
    if set(ax) & set(ay):
        raise ValueError("x and y must be disjoint sets of axes")
    return _h(p, ax, base) + _h(p, ay, base) - _h(p, ax + ay, base)


def conditional_mutual_information(joint, x: Variable = 0, y: Variable = 1, z: Variable = 2,
                                   base: float = math.e) -> float:
    """``I(X;Y|Z) = H(X,Z) + H(Y,Z) - H(Z) - H(X,Y,Z)``."""
    p = check_joint(joint)
    base = _check_base(base)
    ax, ay, az = _axes(x, p.ndim, "x"), _axes(y, p.ndim, "y"), _axes(z, p.ndim, "z")
    if set(ax) & set(ay) or set(ax) & set(az) or set(ay) & set(az):
        raise ValueError("x, y and z must be disjoint sets of axes")
    return _h(p, ax + az, base) + _h(p, ay + az, base) - _h(p, az, base) - _h(p, ax + ay + az, base)


def _variables(p: np.ndarray, variables) -> list[tuple[int, ...]]:
    vs = [(a,) for a in range(p.ndim)] if variables is None else [
        _axes(v, p.ndim, f"variables[{k}]") for k, v in enumerate(variables)]
    flat = [a for v in vs for a in v]
    if len(set(flat)) != len(flat):
        raise ValueError("variables must be disjoint sets of axes")
    if len(vs) < 2:
        raise ValueError(f"at least 2 variables are needed, got {len(vs)}")
    return vs


def co_information(joint, variables: Sequence[Variable] | None = None, base: float = math.e) -> float:
    """Co-information (McGill 1954; Bell 2003) ``-Σ_{S≠∅} (-1)^{|S|} H(S)``. Two variables: I(X;Y); three:
    ``I(X;Y) - I(X;Y|Z)`` (= FactorCL's S = I(X1;X2;Y); ``dit.multivariate.coinformation``'s sign)."""
    p = check_joint(joint)
    base = _check_base(base)
    vs = _variables(p, variables)
    total = 0.0
    for k in range(1, len(vs) + 1):
        for subset in itertools.combinations(vs, k):
            total -= (-1) ** k * _h(p, [a for v in subset for a in v], base)
    return total


def total_correlation(joint, variables: Sequence[Variable] | None = None, base: float = math.e) -> float:
    """Total correlation (Watanabe 1960) ``Σ_i H(X_i) - H(X_1, ..., X_n)``."""
    p = check_joint(joint)
    base = _check_base(base)
    vs = _variables(p, variables)
    return sum(_h(p, v, base) for v in vs) - _h(p, [a for v in vs for a in v], base)


def dual_total_correlation(joint, variables: Sequence[Variable] | None = None, base: float = math.e) -> float:
    """Dual total correlation (Han 1978) ``H(X) - Σ_i H(X_i | X_-i) = Σ_i H(X_-i) - (n-1) H(X)``."""
    p = check_joint(joint)
    base = _check_base(base)
    vs = _variables(p, variables)
    allax = [a for v in vs for a in v]
    rest = [[a for w in vs if w is not v for a in w] for v in vs]
    return sum(_h(p, r, base) for r in rest) - (len(vs) - 1) * _h(p, allax, base)


# ---------------------------------------------------------------------------------------------- PID

#: PID measures of ``dit.pid`` by name
PID_METHODS = {
    "wb": "PID_WB",  # Williams & Beer 2010, I_min
    "broja": "PID_BROJA",  # Bertschinger, Rauh, Olbrich, Jost, Ay 2014
    "mmi": "PID_MMI",  # minimum mutual information (Barrett 2015)
    "ccs": "PID_CCS",  # Ince 2017, common change in surprisal
    "dep": "PID_dep",  # James, Emenheiser, Crutchfield 2018, dependency decomposition
}


@dataclass
class PIDResult:
    """A partial information decomposition of ``I(sources; target)``.

    For two sources: ``redundancy`` R, ``unique = (U1, U2)``, ``synergy`` S, with R + U1 + U2 + S = I(X1,X2;Y).
    For more sources these hold the atoms ``{0}{1}...``, ``{i}`` and ``{01...}``; ``atoms`` has the whole lattice
    (keys like ``"{0}{1}"``, ``"{0:1}"``, dit's notation).
    """

    redundancy: float
    unique: tuple[float, ...]
    synergy: float
    method: str
    base: float
    atoms: dict[str, float] = field(default_factory=dict)

    def as_tuple(self) -> tuple[float, ...]:
        """``(R, U1, ..., Un, S)``."""
        return (self.redundancy, *self.unique, self.synergy)


def _node_name(node) -> str:
    return "".join("{" + ":".join(str(i) for i in part) + "}" for part in node)


def pid(joint, sources: Sequence[Variable] | None = None, target: Variable = -1, method: str = "wb",
        base: float = math.e, seed: int = 0) -> PIDResult:
    """Partial information decomposition of I(sources; target) with ``dit`` (Williams & Beer 2010).

    Args:
        joint: probability table.
        sources: the source variables (default: every axis except ``target``).
        target: the target variable (default: the last axis).
        method: ``"wb"`` (I_min), ``"broja"``, ``"mmi"``, ``"ccs"``, ``"dep"``.
        base: unit of the result (e: nats, 2: bits).
        seed: seed of the starting point of the numerical optimizers (BROJA and others); the result is
            deterministic for a given seed, and numpy's global random state is left unchanged.
    """
    p = check_joint(joint)
    base = _check_base(base)
    if method not in PID_METHODS:
        raise UnknownNameError("PID method", str(method), list(PID_METHODS))
    from mmib.utils.deps import require

    dit = require("dit", "info", "the partial information decomposition")
    dpid = require("dit.pid", "info", "the partial information decomposition")
    t = _axes(target, p.ndim, "target")
    if sources is None:
        sources = [(a,) for a in range(p.ndim) if a not in t]
    srcs = [_axes(s, p.ndim, f"sources[{k}]") for k, s in enumerate(sources)]
    if len(srcs) < 2:
        raise ValueError(f"pid needs at least 2 sources, got {len(srcs)}")
    flat = [a for s in srcs for a in s] + list(t)
    if len(set(flat)) != len(flat):
        raise ValueError("sources and target must be disjoint sets of axes")
    # one dit variable per source/target: flatten each group of axes to a single index
    drop = tuple(a for a in range(p.ndim) if a not in flat)
    m = p.sum(axis=drop) if drop else p
    kept = [a for a in range(p.ndim) if a in flat]
    groups = [*srcs, t]
    m = np.transpose(m, [kept.index(a) for g in groups for a in g])
    m = m.reshape([int(np.prod([p.shape[a] for a in g])) for g in groups])
    outcomes, probs = [], []
    for idx in zip(*np.nonzero(m > 0)):
        outcomes.append(tuple(int(i) for i in idx))
        probs.append(float(m[idx]))
    d = dit.Distribution(outcomes, probs)
    n = len(srcs)
    # the numerical measures (BROJA, ...) start their optimizer from a random point drawn from numpy's global RNG:
    # draw it from a fixed seed (deterministic results) and leave the caller's global state as it was
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        measure = getattr(dpid, PID_METHODS[method])
        res = None
        if method == "broja" and n == 2:
            # bivariate BROJA: the admUI algorithm (Banerjee et al. 2018): exact on the two-bit table; on general joints
            # it stops near the optimum, at a point that depends on dit's outcome order (PYTHONHASHSEED); dit's default
            # SLSQP path is less accurate still
            try:
                res = measure(d, [[0], [1]], [2], method="admui")
            except Exception:  # pragma: no cover - non-convergence: dit's automatic choice below
                res = None
        if res is None:
            res = measure(d, [[i] for i in range(n)], [n])
    finally:
        np.random.set_state(state)
    scale = math.log(2) / math.log(base)  # dit reports bits
    atoms = {_node_name(node): float(res.get_pi(node)) * scale for node in res._lattice}
    red = atoms["".join("{" + str(i) + "}" for i in range(n))]
    uniq = tuple(atoms["{" + str(i) + "}"] for i in range(n))
    syn = atoms["{" + ":".join(str(i) for i in range(n)) + "}"]
    return PIDResult(red, uniq, syn, method, base, atoms)


# ---------------------------------------------------------------------------------------------- samples


def _codes(v, name: str) -> np.ndarray:
    a = np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{name} must be 1-D (N,) or 2-D (N, k) discrete values, got shape {a.shape}")
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    _, inv = np.unique(a, axis=0, return_inverse=True)
    return inv.reshape(-1)


def joint_from_samples(*variables) -> np.ndarray:
    """Empirical joint table of discrete samples: each argument is ``(N,)`` or ``(N, k)`` (rows are symbols);
    axis ``i`` of the result indexes the distinct values of argument ``i`` in sorted order."""
    if not variables:
        raise ValueError("joint_from_samples needs at least one variable")
    codes = [_codes(v, f"variables[{i}]") for i, v in enumerate(variables)]
    n = len(codes[0])
    if any(len(c) != n for c in codes):
        raise ValueError(f"all variables must have the same number of samples, got {[len(c) for c in codes]}")
    if n == 0:
        raise ValueError("no samples")
    shape = tuple(int(c.max()) + 1 for c in codes)
    flat = np.ravel_multi_index(codes, shape)
    return np.bincount(flat, minlength=int(np.prod(shape))).reshape(shape) / n


_DISCRETIZE = ("quantile", "uniform", "kmeans")


def discretize(z, n_bins: int = 8, method: str = "quantile", seed: int = 0) -> np.ndarray:
    """Integer codes ``(N,)`` of a continuous representation ``z`` (``(N,)`` or ``(N, d)``).

    - ``"quantile"``: each coordinate is cut at its empirical ``1/n_bins`` quantiles (equal-frequency bins);
      a vector's symbol is the tuple of its coordinates' bins (up to ``n_bins**d`` symbols: keep ``d`` small).
    - ``"uniform"``: as quantile, with equal-width bins between each coordinate's min and max.
    - ``"kmeans"``: vector quantization with ``sklearn.cluster.KMeans(n_clusters=n_bins)`` (seed ``seed``);
      the symbol is the cluster.

    The plug-in measures of the codes are those of the *quantized* variables: by the data-processing inequality
    the quantized MI is <= the continuous MI, and the finite-sample plug-in is biased upward by about
    ``(K_x - 1)(K_y - 1) / (2N)`` nats (Miller–Madow). See :func:`plugin_mutual_information`.
    """
    a = np.asarray(z.detach().cpu().numpy() if hasattr(z, "detach") else z, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"z must be (N,) or (N, d) with N >= 2, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("z contains NaN or inf")
    if not isinstance(n_bins, int) or isinstance(n_bins, bool) or n_bins < 2:
        raise ValueError(f"n_bins must be an integer >= 2, got {n_bins!r}")
    if method not in _DISCRETIZE:
        raise UnknownNameError("discretization method", str(method), list(_DISCRETIZE))
    if method == "kmeans":
        from sklearn.cluster import KMeans

        return KMeans(n_clusters=n_bins, n_init=4, random_state=seed).fit_predict(a).astype(np.int64)
    cols = []
    for j in range(a.shape[1]):
        col = a[:, j]
        if method == "quantile":
            edges = np.quantile(col, np.linspace(0, 1, n_bins + 1)[1:-1])
        else:
            edges = np.linspace(col.min(), col.max(), n_bins + 1)[1:-1]
        cols.append(np.searchsorted(edges, col, side="right"))
    bins = np.stack(cols, axis=1)
    _, inv = np.unique(bins, axis=0, return_inverse=True)
    return inv.reshape(-1).astype(np.int64)


def plugin_mutual_information(x, y, n_bins: int = 8, method: str = "quantile", bias_correction: str | None = None,
                              base: float = math.e, seed: int = 0) -> float:
    """Plug-in I(X;Y) of continuous (or discrete) samples after :func:`discretize` of each side.

    ``bias_correction="miller_madow"`` adds ``(m - 1) / (2N)`` to each plug-in entropy (m = occupied bins;
    Miller 1955), i.e. ``(m_x + m_y - m_xy - 1) / (2N)`` to the MI. Integer-valued 1-D inputs are used as they are.
    """
    base = _check_base(base)
    if bias_correction not in (None, "miller_madow"):
        raise ValueError(f"bias_correction must be None or 'miller_madow', got {bias_correction!r}")

    def codes(v, name):
        a = np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v)
        if a.ndim == 1 and a.dtype.kind in "iub":
            return a
        return discretize(a, n_bins=n_bins, method=method, seed=seed)

    cx, cy = codes(x, "x"), codes(y, "y")
    if len(cx) != len(cy):
        raise ValueError(f"x and y must have the same number of samples, got {len(cx)} and {len(cy)}")
    p = joint_from_samples(cx, cy)
    mi = mutual_information(p, 0, 1, base=base)
    if bias_correction == "miller_madow":
        mx, my, mxy = int((p.sum(1) > 0).sum()), int((p.sum(0) > 0).sum()), int((p > 0).sum())
        mi += (mx + my - mxy - 1) / (2 * len(cx)) / math.log(base)
    return mi
