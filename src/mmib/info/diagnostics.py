"""Diagnostics of trained MI estimators: dead ReLU units, saturation, and each bound with its optimal critic.

- :func:`dead_unit_fraction`: a ReLU unit is *dead* when its output is <= 0 on every one of the held-out samples
  it is shown (1,024 by convention, evaluated in batches of the estimator's batch size; for a pair critic every
  pair of a batch counts, joint and product-of-marginals); the fraction reported is that of the worst ReLU layer.
  A network whose units died cannot move its output.
- :func:`saturation`: for critic-based estimators, the fraction of held-out rows whose softmax over the batch puts
  more than ``0.99`` on the positive pair (such a row already contributes ``log N`` to InfoNCE: the critic is at the
  bound's ceiling, not the truth's); for CLUB with the MLP q, the fraction of its ``tanh`` log-variance outputs with
  ``|tanh| > 0.99`` (a saturated variance cannot follow the data). ``None`` where the estimator has neither.
- :func:`gaussian_oracle_estimates`: InfoNCE, NWJ, MINE, CLUB and NCE-CLUB on one batch of
  :func:`~mmib.info.gaussian.correlated_gaussians` with the *optimal* critic — the pointwise MI
  ``log p(y|x) - log p(y)`` (``1 +`` that for NWJ), i.e. CLUB's exact ``q = p(y|x)`` — so a table shows each
  bound's ceiling at the batch size it is evaluated with. The pointwise MI is invariant to invertible maps of each
  variable (the Jacobians cancel), so the oracle of transformed data is the oracle of the Gaussian it came from.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mmib.info.bounds import infonce_lower_bound, mine_lower_bound, nce_club_upper_bound, nwj_lower_bound
from mmib.info.gaussian import correlation_for_mi

#: a unit is counted active on a sample when its output exceeds this
DEAD_THRESHOLD = 0.0
#: softmax mass on the positive pair (critics) / |tanh| (CLUB's log-variance) above which a row / output saturates
SATURATION_LEVEL = 0.99


def _batches(n: int, batch_size: int):
    for s in range(0, n - 1, batch_size):
        if n - s >= 2:
            yield slice(s, min(s + batch_size, n))


def dead_unit_fraction(est: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64
                       ) -> tuple[float, int]:
    """``(fraction of dead ReLU units in the worst layer, number of ReLU units)`` of ``est`` on the held-out
    ``(x, y)``.

    Every ``nn.ReLU`` module of the estimator is hooked; a unit (the last axis of the module's output) is alive if
    any of its outputs on the held-out batches is > 0. The fraction is the largest over the ReLU layers (e.g. CLUB's
    μ and log σ² networks, each layer of a critic), so a bound on it holds for every network of the estimator;
    pooling the layers would let one dying network hide behind a healthy one. Returns ``(0.0, 0)`` for a network
    without ReLU units.
    """
    alive: dict[int, torch.Tensor] = {}
    handles = []

    def hook(mod, _inp, out):
        flat = out.detach().reshape(-1, out.shape[-1])
        act = (flat > DEAD_THRESHOLD).any(0)
        alive[id(mod)] = act if id(mod) not in alive else alive[id(mod)] | act

    for m in est.modules():
        if isinstance(m, nn.ReLU):
            handles.append(m.register_forward_hook(hook))
    try:
        with torch.no_grad():
            for sl in _batches(x.shape[0], batch_size):
                est.estimates(x[sl], y[sl])
    finally:
        for h in handles:
            h.remove()
    total = sum(int(a.numel()) for a in alive.values())
    if total == 0:
        return 0.0, 0
    return max(float((~a).sum()) / a.numel() for a in alive.values()), total


def saturation(est: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 64) -> float | None:
    """The saturation fraction of ``est`` on the held-out ``(x, y)`` (see the module docstring), or ``None``."""
    rows, hits = 0, 0
    with torch.no_grad():
        for sl in _batches(x.shape[0], batch_size):
            if hasattr(est, "log_q"):  # CLUB
                if getattr(est, "q", "mlp") != "mlp":
                    return None
                logvar = est._gaussian(x[sl], y[sl], None)[1]
                hits += int((logvar.abs() > SATURATION_LEVEL).sum())
                rows += logvar.numel()
            else:
                s, _ = est.scores(x[sl], y[sl])
                p = torch.softmax(s.double(), dim=1).diagonal()
                hits += int((p > SATURATION_LEVEL).sum())
                rows += p.numel()
    return hits / rows if rows else None


def gaussian_pointwise_mi(x: torch.Tensor, y: torch.Tensor, mi: float) -> torch.Tensor:
    """``S[i, j] = log p(y_j | x_i) - log p(y_j)`` (float64) for :func:`correlated_gaussians` with ``I = mi``."""
    d = x.shape[1]
    rho = correlation_for_mi(d, float(mi))
    x, y = x.double(), y.double()
    v = 1.0 - rho * rho
    sq = (y * y).sum(1)[None, :] - 2 * rho * (x @ y.T) + rho * rho * (x * x).sum(1)[:, None]  # |y_j - ρ x_i|²
    return -sq / (2 * v) - 0.5 * d * math.log(v) + 0.5 * (y * y).sum(1)[None, :]


def gaussian_oracle_estimates(x: torch.Tensor, y: torch.Tensor, mi: float) -> dict[str, float]:
    """Every study estimator's value on one batch with its optimal critic (CLUB: the exact q = p(y|x))."""
    s = gaussian_pointwise_mi(x, y, mi)
    club = float(nce_club_upper_bound(s, include_diagonal=True))  # log p(y_j) cancels in the all-pairs form
    return {
        "infonce": float(infonce_lower_bound(s)),
        "nwj": float(nwj_lower_bound(s + 1.0)),
        "mine": float(mine_lower_bound(s)),
        "club": club,
        "club_linear": club,
        "nce_club": club,
        "nce_club_offdiag": float(nce_club_upper_bound(s, include_diagonal=False)),
    }
