"""Variational information bottleneck pieces shared by OMIB and the MIB baselines.

* :func:`task_nll` — the per-sample ``-log q(y | ·)`` of a head's output for the data set's task: softmax
  cross-entropy (classification, nats), squared error (regression; OMIB App. H "MSE"), or the squared distance to an
  SVDD centre (Deep SVDD, Ruff et al. 2018; OMIB App. H Eq. 104).
* :func:`gaussian_kl_standard` — ``KL[N(μ, diag σ²) || N(0, I)]`` per sample (Alemi et al. 2017, Eq. 15),
  summed over latent dimensions (the true KL) or averaged over them (Mai et al.'s MIB code).
* :class:`VIBLoss` — ``mean_n [ task_nll + β Σ_m w_m KL_m ]``: deep (multi-view) VIB, E-/L-/C-MIB and OMIB's
  L_OMF (Eq. 10; the weights w_m are OMIB's ``1, r_1, r_2, …``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mmib.info.vib import gaussian_kl
from mmib.objectives.base import LossOutput

TASKS = ("classification", "regression", "svdd")
LATENT_REDUCTIONS = ("sum", "mean")


def _check_task(task: str) -> str:
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    return task


def task_nll(output: torch.Tensor, target: torch.Tensor | None, task: str,
             center: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample task loss (N,).

    Args:
        output: head output, logits (N, C) for classification, (N, k) for regression and SVDD.
        target: class indices (N,) / regression targets (N,) or (N, k); unused for SVDD.
        task: ``classification``, ``regression`` or ``svdd``.
        center: the SVDD centre (k,) (required for ``svdd``).
    """
    _check_task(task)
    if not isinstance(output, torch.Tensor) or output.dim() != 2:
        raise ValueError(f"task_nll: output must be a 2-D tensor (N, k), got {getattr(output, 'shape', output)}")
    if task == "svdd":
        if center is None or center.shape != output.shape[1:]:
            raise ValueError(f"task_nll: svdd needs a centre of shape ({output.shape[1]},), got "
                             f"{None if center is None else tuple(center.shape)}")
        return (output - center).pow(2).sum(1)
    if target is None:
        raise ValueError(f"task_nll: task '{task}' needs targets")
    if target.shape[0] != output.shape[0]:
        raise ValueError(f"task_nll: {output.shape[0]} outputs but {target.shape[0]} targets")
    if task == "classification":
        if target.dim() != 1 or target.is_floating_point():
            raise ValueError(f"task_nll: classification targets must be class indices (N,), got {target.dtype} "
                             f"{tuple(target.shape)}")
        return F.cross_entropy(output, target, reduction="none")
    t = target.reshape(target.shape[0], -1).to(output.dtype)
    if t.shape[1] != output.shape[1]:
        raise ValueError(f"task_nll: regression target width {t.shape[1]} != output width {output.shape[1]}")
    return (output - t).pow(2).mean(1)


def gaussian_kl_standard(mu: torch.Tensor, logvar: torch.Tensor, latent_reduction: str = "sum") -> torch.Tensor:
    """``KL[N(μ, diag e^logvar) || N(0, I)]`` per sample (N,), in nats: ``½ Σ_j (μ² + σ² − ln σ² − 1)``
    (``latent_reduction="sum"``, the true KL) or that sum divided by the latent size (``"mean"``, Mai et al.'s code).
    """
    if latent_reduction not in LATENT_REDUCTIONS:
        raise ValueError(f"latent_reduction must be one of {LATENT_REDUCTIONS}, got {latent_reduction!r}")
    kl = gaussian_kl(mu, logvar, reduction="none")
    return kl / mu.shape[1] if latent_reduction == "mean" else kl


class VIBLoss(nn.Module):
    """``L = mean_n [ task_nll(ŷ_n, y_n) + β Σ_m w_m KL_m,n ]`` (OMIB Eq. 10 with w = (1, r); deep VIB with w ≡ 1).

    Args:
        beta: the IB weight β >= 0 (finite).
        task: ``classification`` | ``regression`` | ``svdd``.

    Raises:
        ValueError: a negative or non-finite β, an unknown task, or KL terms that are not (N,) tensors.

    Example:
        >>> loss_fn = VIBLoss(beta=1e-3)
        >>> logits = torch.zeros(4, 2)  # uniform predictions: -log q(y | z) = log 2
        >>> kl = torch.full((4,), 2.0)  # each sample's KL(p(z | x) || r(z))
        >>> out = loss_fn(logits, torch.tensor([0, 1, 0, 1]), [kl])
        >>> round(out.loss.item(), 4)  # log 2 + 1e-3 * 2
        0.6951
        >>> sorted(out.terms)
        ['kl_0', 'kl_weighted', 'task']
    """

    def __init__(self, beta: float, task: str = "classification"):
        super().__init__()
        if not isinstance(beta, (int, float)) or not math.isfinite(beta) or beta < 0:
            raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
        self.beta = float(beta)
        self.task = _check_task(task)

    def forward(self, output: torch.Tensor, target: torch.Tensor | None, kls: Sequence[torch.Tensor],
                weights: Sequence[float | torch.Tensor] | None = None,
                center: torch.Tensor | None = None) -> LossOutput:
        nll = task_nll(output, target, self.task, center)
        weights = [1.0] * len(kls) if weights is None else list(weights)
        if len(weights) != len(kls):
            raise ValueError(f"VIBLoss: {len(kls)} KL terms but {len(weights)} weights")
        reg = torch.zeros_like(nll)
        terms: dict[str, torch.Tensor] = {"task": nll.mean().detach()}
        for i, (kl, w) in enumerate(zip(kls, weights)):
            if not isinstance(kl, torch.Tensor) or kl.shape != nll.shape:
                raise ValueError(f"VIBLoss: KL term {i} must have shape {tuple(nll.shape)}, got "
                                 f"{getattr(kl, 'shape', kl)}")
            reg = reg + w * kl
            terms[f"kl_{i}"] = kl.mean().detach()
        loss = (nll + self.beta * reg).mean()
        terms["kl_weighted"] = reg.mean().detach()
        return LossOutput(loss, terms)
