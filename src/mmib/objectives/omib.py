"""OMIB's objective pieces (Wu et al., "Learning Optimal Multimodal Information Bottleneck Representations",
ICML 2025; spec ``specs/omib.md`` §3).

* :func:`prediction_divergence` — per-sample ``KL(p(ŷ_i | ξ, z_i) || p(ŷ | ξ))`` between a task-relevance branch
  (TRB) and the fused head (eq. 11's summand). For regression and SVDD, where no predictive distribution exists,
  the squared distance of the outputs (a fixed-variance Gaussian; spec §3.4 [INTERP], σ cancels in the ratio).
* :func:`dynamic_weight` — ``r = 1 − tanh(ln R)`` (eq. 11; App. D eq. 68 for M ≥ 3 with modality 1 as the reference),
  R the batch mean of the per-sample ratios (literal) or the ratio of the means (eqs. 47–49). Identity:
  ``r = 2 / (1 + R²)`` ∈ (0, 2).
* :func:`sample_beta` — β drawn once from ``[M_l, M_u]`` (Alg. 2 line 5; log-uniform by default).
* :class:`OMFLoss` — L_OMF (eq. 10 / eq. 67): task NLL of the fused head + β (KL_1 + Σ_m r_m KL_m).

The β interval ``[M_l, M_u]`` (Prop. 5.7) and the MINE estimates it comes from (training critics, a disk cache) are
information measurement, not pure tensors: :mod:`mmib.info.omib_information`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mmib.objectives.base import LossOutput
from mmib.objectives.vib import VIBLoss, _check_task

R_MODES = ("mean_of_ratios", "ratio_of_means")


def r_from_ratio(R: torch.Tensor | float, eps: float = 1e-8) -> torch.Tensor:
    """``r = 1 − tanh(ln R)`` computed stably as ``2 / (1 + R²)`` (exact algebra, spec §3.4) for R >= 0;
    ``R`` is clamped to ``[eps, 1/eps]`` so that r stays in (0, 2) and is never NaN."""
    R = torch.as_tensor(R, dtype=torch.get_default_dtype() if not isinstance(R, torch.Tensor) else R.dtype)
    if torch.isnan(R).any() or (R < 0).any():
        raise ValueError(f"r_from_ratio: R must be >= 0 and not NaN, got {R}")
    R = R.clamp(eps, 1.0 / eps)
    return 2.0 / (1.0 + R * R)


def prediction_divergence(trb_output: torch.Tensor, fused_output: torch.Tensor, task: str) -> torch.Tensor:
    """Per-sample divergence (N,) of a TRB's prediction from the fused head's.

    Classification: ``KL(softmax(trb) || softmax(fused)) = Σ_c p_c (ln p_c − ln q_c)`` (eq. 11).
    Regression / SVDD: ``||trb − fused||²`` (spec §3.4 [INTERP]).
    """
    _check_task(task)
    if trb_output.shape != fused_output.shape or trb_output.dim() != 2:
        raise ValueError(f"prediction_divergence: outputs must be 2-D of one shape, got {tuple(trb_output.shape)} "
                         f"and {tuple(fused_output.shape)}")
    if task == "classification":
        lp = F.log_softmax(trb_output, dim=1)
        lq = F.log_softmax(fused_output, dim=1)
        return (lp.exp() * (lp - lq)).sum(1).clamp_min(0.0)
    return (trb_output - fused_output).pow(2).sum(1)


def ratio_statistic(div_other: torch.Tensor, div_ref: torch.Tensor, mode: str = "mean_of_ratios",
                    eps: float = 1e-8) -> torch.Tensor:
    """R of eq. (11): ``mean_n div_other / (div_ref + eps)`` (literal) or ``mean(div_other) / (mean(div_ref) + eps)``."""
    if mode not in R_MODES:
        raise ValueError(f"r_mode must be one of {R_MODES}, got {mode!r}")
    if div_other.shape != div_ref.shape or div_other.dim() != 1:
        raise ValueError("ratio_statistic: the per-sample divergences must be (N,) tensors of one shape")
    if mode == "mean_of_ratios":
        return (div_other / (div_ref + eps)).mean()
    return div_other.mean() / (div_ref.mean() + eps)


@torch.no_grad()
def dynamic_weight(trb_outputs: Sequence[torch.Tensor], fused_output: torch.Tensor, task: str,
                   mode: str = "mean_of_ratios", eps: float = 1e-8) -> tuple[torch.Tensor, torch.Tensor]:
    """The weights ``(r_1, …, r_{M-1})`` of modalities 2..M relative to the reference modality 1 (eqs. 11, 68),
    computed without gradient; returns ``(r, R)``, each of shape (M−1,)."""
    if len(trb_outputs) < 2:
        raise ValueError(f"dynamic_weight: needs the TRB outputs of >= 2 modalities, got {len(trb_outputs)}")
    divs = [prediction_divergence(o.detach(), fused_output.detach(), task) for o in trb_outputs]
    R = torch.stack([ratio_statistic(d, divs[0], mode, eps) for d in divs[1:]])
    return r_from_ratio(R, eps), R


def sample_beta(lower: float, upper: float, generator: torch.Generator | None = None, scale: str = "log") -> float:
    """β drawn once from ``[lower, upper]`` (Alg. 2 line 5; the distribution is not given: ``log`` uniform in log-space
    (default) or ``linear``)."""
    if not (0 < lower <= upper) or not math.isfinite(upper):
        raise ValueError(f"sample_beta: needs 0 < lower <= upper < inf, got [{lower}, {upper}]")
    u = float(torch.rand((), generator=generator, dtype=torch.float64))
    if scale == "log":
        return min(max(math.exp(math.log(lower) + u * (math.log(upper) - math.log(lower))), lower), upper)
    if scale == "linear":
        return min(max(lower + u * (upper - lower), lower), upper)
    raise ValueError(f"beta_sampling must be 'log' or 'linear', got {scale!r}")


class OMFLoss(nn.Module):
    """L_OMF (eq. 10; eq. 67 for M = 3): ``mean_n [ −log q(y_n | ξ_n) + β (KL_1,n + Σ_{m≥2} r_{m−1} KL_m,n) ]``.

    Args:
        beta: β >= 0, fixed during main training.
        task: ``classification`` | ``regression`` | ``svdd``.

    Example:
        >>> loss_fn = OMFLoss(beta=0.1)
        >>> logits = torch.zeros(4, 3)  # uniform predictions: -log q(y | ξ) = log 3
        >>> kls = [torch.ones(4), torch.full((4,), 2.0)]  # KL_1,n and KL_2,n
        >>> out = loss_fn(logits, torch.tensor([0, 1, 2, 0]), kls, r=[0.5])
        >>> round(out.loss.item(), 4)  # log 3 + 0.1 * (1 + 0.5 * 2)
        1.2986
    """

    def __init__(self, beta: float, task: str = "classification"):
        super().__init__()
        self.vib = VIBLoss(beta, task)

    @property
    def beta(self) -> float:
        return self.vib.beta

    def forward(self, fused_output: torch.Tensor, target: torch.Tensor | None, kls: Sequence[torch.Tensor],
                r: torch.Tensor | Sequence[float], center: torch.Tensor | None = None) -> LossOutput:
        r = torch.as_tensor(r, dtype=fused_output.dtype, device=fused_output.device).reshape(-1).detach()
        if r.numel() != len(kls) - 1:
            raise ValueError(f"OMFLoss: {len(kls)} modalities need {len(kls) - 1} weights r, got {r.numel()}")
        weights = [torch.ones((), dtype=r.dtype, device=r.device), *r]
        return self.vib(fused_output, target, kls, weights, center)
