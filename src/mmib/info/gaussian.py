"""Closed-form information measures of jointly Gaussian variables and generators with a known MI.

For a Gaussian vector with covariance Σ, ``H = ½ log det(2πe Σ)`` and every measure below is a combination of
log-determinants of sub-blocks (Cover & Thomas, Thm 8.4.1). Index arguments select coordinates of ``cov``;
``groups`` are lists of index lists (one per variable/modality). All values in **nats**; log-determinants come from
``numpy.linalg.slogdet``.

- Total correlation (Watanabe 1960): ``TC = Σ_m H(Z_m) - H(Z)``.
- Dual total correlation (Han 1978): ``DTC = H(Z) - Σ_m H(Z_m | Z_{-m})``.
- One-vs-all MI: ``I(Z_m; Z_{-m})``; OVA-IB Thm 3.3: ``Σ_m I(Z_m; Z_{-m}) = TC + DTC`` and
  ``(1/M) Σ_m I <= DTC <= ((M-1)/M) Σ_m I`` (spec ova-ib §4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch


def _as_cov(cov, name: str = "cov") -> np.ndarray:
    a = np.asarray(cov.detach().cpu().numpy() if isinstance(cov, torch.Tensor) else cov, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
        raise ValueError(f"{name} must be a square 2-D covariance matrix, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    if not np.allclose(a, a.T, rtol=1e-8, atol=1e-10 * max(1.0, np.abs(a).max())):
        raise ValueError(f"{name} must be symmetric")
    return a


def _idx(idx, n: int, name: str) -> list[int]:
    if isinstance(idx, (int, np.integer)):
        idx = [int(idx)]
    out = [int(i) for i in idx]
    if not out:
        raise ValueError(f"{name} must select at least one coordinate")
    if any(i < 0 or i >= n for i in out):
        raise ValueError(f"{name} has indices outside 0..{n - 1}: {out}")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} has repeated indices: {out}")
    return out


def _logdet(cov: np.ndarray, idx: Sequence[int], name: str = "cov") -> float:
    sub = cov[np.ix_(idx, idx)]
    sign, ld = np.linalg.slogdet(sub)
    if sign <= 0 or not np.isfinite(ld):
        raise ValueError(f"{name} restricted to indices {list(idx)} is not positive definite")
    return float(ld)


def gaussian_entropy(cov, idx=None) -> float:
    """Differential entropy ``½ log det(2πe Σ)`` of the coordinates ``idx`` (default all), in nats."""
    c = _as_cov(cov)
    idx = list(range(c.shape[0])) if idx is None else _idx(idx, c.shape[0], "idx")
    return 0.5 * (len(idx) * math.log(2 * math.pi * math.e) + _logdet(c, idx))


def gaussian_mi(cov, idx_x, idx_y) -> float:
    """``I(X;Y) = ½ [log det Σ_XX + log det Σ_YY - log det Σ_{XY}]`` (Cover & Thomas Eq. 8.56 generalized)."""
    c = _as_cov(cov)
    ix, iy = _idx(idx_x, c.shape[0], "idx_x"), _idx(idx_y, c.shape[0], "idx_y")
    if set(ix) & set(iy):
        raise ValueError("idx_x and idx_y must be disjoint")
    return 0.5 * (_logdet(c, ix) + _logdet(c, iy) - _logdet(c, ix + iy))


def gaussian_cmi(cov, idx_x, idx_y, idx_c) -> float:
    """``I(X;Y|C) = ½ [log det Σ_XC + log det Σ_YC - log det Σ_C - log det Σ_XYC]``."""
    c = _as_cov(cov)
    ix, iy, ic = (_idx(i, c.shape[0], n) for i, n in ((idx_x, "idx_x"), (idx_y, "idx_y"), (idx_c, "idx_c")))
    if set(ix) & set(iy) or set(ix) & set(ic) or set(iy) & set(ic):
        raise ValueError("idx_x, idx_y and idx_c must be disjoint")
    return 0.5 * (_logdet(c, ix + ic) + _logdet(c, iy + ic) - _logdet(c, ic) - _logdet(c, ix + iy + ic))


def _groups(c: np.ndarray, groups) -> list[list[int]]:
    n = c.shape[0]
    if groups is None:
        return [[i] for i in range(n)]
    out = [_idx(g, n, f"groups[{k}]") for k, g in enumerate(groups)]
    if len(out) < 2:
        raise ValueError(f"groups must list at least 2 variables, got {len(out)}")
    flat = [i for g in out for i in g]
    if len(set(flat)) != len(flat):
        raise ValueError("groups must be disjoint")
    return out


def gaussian_total_correlation(cov, groups=None) -> float:
    """Total correlation ``Σ_m H(Z_m) - H(Z_1..Z_M) = ½ [Σ_m log det Σ_mm - log det Σ]`` over the ``groups``
    (default: every coordinate its own variable)."""
    c = _as_cov(cov)
    gs = _groups(c, groups)
    allidx = [i for g in gs for i in g]
    return 0.5 * (sum(_logdet(c, g) for g in gs) - _logdet(c, allidx))


def gaussian_dual_total_correlation(cov, groups=None) -> float:
    """Dual total correlation ``H(Z) - Σ_m H(Z_m | Z_{-m}) = Σ_m H(Z_{-m}) - (M-1) H(Z)``
    (log-determinant form; the 2πe terms cancel)."""
    c = _as_cov(cov)
    gs = _groups(c, groups)
    allidx = [i for g in gs for i in g]
    rest = [[i for h in gs if h is not g for i in h] for g in gs]
    return 0.5 * (sum(_logdet(c, r) for r in rest) - (len(gs) - 1) * _logdet(c, allidx))


def gaussian_one_vs_all_mi(cov, groups=None) -> list[float]:
    """``[I(Z_m; Z_{-m}) for each group m]`` (OVA-IB Thm 3.3: their sum is TC + DTC)."""
    c = _as_cov(cov)
    gs = _groups(c, groups)
    return [gaussian_mi(c, g, [i for h in gs if h is not g for i in h]) for g in gs]


# ---------------------------------------------------------------------------------------------- generators


def correlation_for_mi(dim: int, mi: float) -> float:
    """ρ such that ``dim`` independent coordinate pairs of correlation ρ have ``I = -(dim/2) log(1 - ρ²) = mi``
    (FactorCL App. D.2 / spec A.8.1)."""
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    if not (isinstance(mi, (int, float)) and math.isfinite(mi) and mi >= 0):
        raise ValueError(f"mi must be a finite number >= 0 (nats), got {mi!r}")
    return math.sqrt(-math.expm1(-2.0 * mi / dim))


def _generator(seed) -> torch.Generator:
    if isinstance(seed, torch.Generator):
        return seed
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int or a torch.Generator, got {type(seed).__name__}")
    return torch.Generator().manual_seed(int(seed))


def correlated_gaussians(n: int, dim: int, mi: float, seed: int | torch.Generator = 0
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` samples of ``(x, y)``, each ``(n, dim)`` float32, with ``I(X;Y) = mi`` nats exactly.

    ``x ~ N(0, I)``, ``y = ρ x + sqrt(1-ρ²) ε`` with ρ from :func:`correlation_for_mi` (the FactorCL Fig. 3 /
    Poole et al. / CLUB benchmark). ``seed`` may be a ``torch.Generator`` to draw a stream of batches.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    rho = correlation_for_mi(dim, mi)
    g = _generator(seed)
    x = torch.randn(n, dim, generator=g)
    eps = torch.randn(n, dim, generator=g)
    return x, rho * x + math.sqrt(1.0 - rho * rho) * eps


def gaussian_club_value(dim: int, mi: float) -> float:
    """The value of CLUB with the *exact* conditional ``q = p(y|x)`` on :func:`correlated_gaussians` (equal to
    NCE-CLUB with the optimal InfoNCE critic ``log p(y|x) + c(x)``, FactorCL Thm 2): ``d ρ² / (1 - ρ²)
    = d (e^{2 I / d} - 1)`` nats, from ``E_p(x,y)[log p(y|x)] - E_p(x)p(y)[log p(y|x)]``. It is >= I and is what a
    well-trained CLUB / NCE-CLUB converges to: e.g. d = 20, I = 10 gives 34.4 nats."""
    rho = correlation_for_mi(dim, mi)
    return dim * rho * rho / (1.0 - rho * rho)


def correlated_gaussians_covariance(dim: int, mi: float) -> np.ndarray:
    """Joint covariance of ``[x, y]`` of :func:`correlated_gaussians` (2·dim × 2·dim)."""
    rho = correlation_for_mi(dim, mi)
    eye = np.eye(dim)
    return np.block([[eye, rho * eye], [rho * eye, eye]])


def _conditional_params(dim: int, cmi: float, sigma_z: float, matrix_seed: int):
    if not (isinstance(cmi, (int, float)) and math.isfinite(cmi) and cmi > 0):
        raise ValueError(f"cmi must be a finite number > 0 (nats), got {cmi!r}")
    if not (isinstance(sigma_z, (int, float)) and sigma_z > 0):
        raise ValueError(f"sigma_z must be > 0, got {sigma_z!r}")
    rho = correlation_for_mi(dim, cmi)
    sigma2 = sigma_z**2 * (1.0 / rho - 1.0)  # ρ = σz² / (σz² + σ²)
    gm = torch.Generator().manual_seed(int(matrix_seed))
    a = torch.randn(dim, dim, generator=gm, dtype=torch.float64) / math.sqrt(dim)
    b = torch.randn(dim, dim, generator=gm, dtype=torch.float64) / math.sqrt(dim)
    return a, b, sigma2


def conditional_gaussians(n: int, dim: int, cmi: float, seed: int | torch.Generator = 0, sigma_z: float = 1.0,
                          samples_per_condition: int = 1, matrix_seed: int = 0
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x1, x2, c)`` with a known ``I(X1;X2|C) = cmi`` nats (spec D.1.4, our replacement for FactorCL
    Tables 9–10's CCMI data):

        c ~ N(0, I_d),  z ~ N(0, σz² I_d),  x1 = A c + z + ε1,  x2 = B c + z + ε2,  εi ~ N(0, σ² I_d)

    Given c, each coordinate pair is bivariate Gaussian with ``ρ = σz² / (σz² + σ²)``, so
    ``I(X1;X2|C) = -(d/2) log(1 - ρ²)``; σ² is chosen to hit ``cmi``. ``A``, ``B`` are fixed Gaussian matrices
    (entries N(0, 1/d), from ``matrix_seed``). With ``samples_per_condition = k`` each drawn ``c`` is repeated for
    ``k`` consecutive rows with independent ``(z, ε1, ε2)``: the joint law is unchanged, and batches that share one
    ``c`` give negatives from ``p(x2 | c)`` (``negatives="same_condition"``). ``n`` must be a multiple of ``k``.
    Returns float32 tensors of shape ``(n, dim)``.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    if not isinstance(samples_per_condition, int) or samples_per_condition < 1 or n % samples_per_condition:
        raise ValueError(f"samples_per_condition must be a positive integer dividing n={n}, "
                         f"got {samples_per_condition!r}")
    a, b, sigma2 = _conditional_params(dim, cmi, sigma_z, matrix_seed)
    g = _generator(seed)
    k = samples_per_condition
    c = torch.randn(n // k, dim, generator=g, dtype=torch.float64).repeat_interleave(k, dim=0)
    z = sigma_z * torch.randn(n, dim, generator=g, dtype=torch.float64)
    s = math.sqrt(sigma2)
    x1 = c @ a.T + z + s * torch.randn(n, dim, generator=g, dtype=torch.float64)
    x2 = c @ b.T + z + s * torch.randn(n, dim, generator=g, dtype=torch.float64)
    return x1.float(), x2.float(), c.float()


def conditional_gaussians_covariance(dim: int, cmi: float, sigma_z: float = 1.0, matrix_seed: int = 0
                                     ) -> np.ndarray:
    """Joint covariance of ``[x1, x2, c]`` of :func:`conditional_gaussians` (3·dim × 3·dim)."""
    a, b, sigma2 = _conditional_params(dim, cmi, sigma_z, matrix_seed)
    a, b = a.numpy(), b.numpy()
    eye = np.eye(dim)
    v = (sigma_z**2 + sigma2) * eye
    return np.block([
        [a @ a.T + v, a @ b.T + sigma_z**2 * eye, a],
        [b @ a.T + sigma_z**2 * eye, b @ b.T + v, b],
        [a.T, b.T, eye],
    ])
