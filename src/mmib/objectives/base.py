"""Shared pieces of every objective: the output type, a fixed-or-learned temperature, argument checks."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class LossOutput:
    """The value of an objective: the scalar to minimize and its named terms (detached, for logging)."""

    loss: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.loss.dim() != 0:
            raise ValueError(f"LossOutput.loss must be a scalar, got shape {tuple(self.loss.shape)}")


class Temperature(nn.Module):
    """A contrastive temperature τ, fixed or learned.

    Learned temperatures are parameterized as ``log(1/τ)`` (CLIP's logit scale) and clamped so that
    ``τ >= min_temperature``. Use :meth:`scale` (= 1/τ) to multiply similarities.

    Raises:
        ValueError: if ``temperature`` is not a finite positive number.
    """

    def __init__(self, temperature: float = 0.07, learnable: bool = False, min_temperature: float = 1e-3):
        super().__init__()
        if not isinstance(temperature, (int, float)) or not math.isfinite(temperature) or temperature <= 0:
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
        if min_temperature <= 0 or min_temperature > temperature:
            raise ValueError(f"min_temperature must lie in (0, temperature], got {min_temperature!r}")
        self.learnable = bool(learnable)
        self.max_log_scale = math.log(1.0 / min_temperature)
        init = torch.tensor(math.log(1.0 / temperature))
        if self.learnable:
            self.log_scale = nn.Parameter(init)
        else:
            self.register_buffer("log_scale", init)

    def scale(self) -> torch.Tensor:
        return self.log_scale.clamp(max=self.max_log_scale).exp()

    @property
    def value(self) -> float:
        return float(1.0 / self.scale().detach())

    def extra_repr(self) -> str:
        return f"temperature={self.value:.4g}, learnable={self.learnable}"


def check_embeddings(
    embeddings: Mapping[str, torch.Tensor] | Sequence[torch.Tensor], min_modalities: int = 2, name: str = "objective"
) -> tuple[list[str], list[torch.Tensor]]:
    """Validate a set of per-modality embeddings: at least ``min_modalities`` 2-D tensors of equal shape."""
    if isinstance(embeddings, Mapping):
        keys = list(embeddings)
        values = [embeddings[k] for k in keys]
    else:
        values = list(embeddings)
        keys = [str(i) for i in range(len(values))]
    if len(values) < min_modalities:
        raise ValueError(f"{name}: needs at least {min_modalities} modalities, got {len(values)}")
    for k, v in zip(keys, values):
        if not isinstance(v, torch.Tensor) or v.dim() != 2:
            raise ValueError(
                f"{name}: embedding of modality '{k}' must be a 2-D tensor (N, d), got "
                f"{tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__}"
            )
    shapes = {k: tuple(v.shape) for k, v in zip(keys, values)}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"{name}: all embeddings must have the same shape (N, d), got {shapes}")
    if values[0].shape[0] < 1:
        raise ValueError(f"{name}: empty batch")
    return keys, values


def check_queries(
    queries: Mapping[str, torch.Tensor] | Sequence[torch.Tensor], candidates: torch.Tensor, name: str = "score"
) -> tuple[list[str], list[torch.Tensor]]:
    """Validate a retrieval query set (k >= 1 tensors (Nq, d), the other modalities of each query sample) against
    candidates (Nc, d) of one modality; returns the query keys and tensors."""
    keys, qs = check_embeddings(queries, 1, name)
    if not isinstance(candidates, torch.Tensor) or candidates.dim() != 2:
        got = tuple(candidates.shape) if isinstance(candidates, torch.Tensor) else type(candidates).__name__
        raise ValueError(f"{name}: candidates must be a 2-D tensor (Nc, d), got {got}")
    if candidates.shape[1] != qs[0].shape[1]:
        raise ValueError(
            f"{name}: candidates have dimension {candidates.shape[1]} but queries {qs[0].shape[1]}; they must match"
        )
    return keys, qs


def l2_normalize(z: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Row-wise L2 normalization that maps a zero row to zero (no NaN)."""
    return z / z.norm(dim=-1, keepdim=True).clamp_min(eps)


def contrastive_ce(
    logits: torch.Tensor,
    positive_in_denominator: bool = True,
    label_smoothing: float = 0.0,
    targets: torch.Tensor | None = None,
) -> torch.Tensor:
    """Row-wise InfoNCE: mean over rows of ``-log softmax(logits)[row, positive]``.

    By default ``logits`` is square with the positives on its diagonal. With ``targets`` (one column index per row)
    it may be rectangular, e.g. local rows scored against candidates gathered from every process.
    ``positive_in_denominator=False`` gives the decoupled form (the sum over n' != n, OVA-IB Eqs. 1 and 9).
    ``label_smoothing`` (in [0, 1)) is only defined with the positive in the denominator.
    """
    if not 0.0 <= float(label_smoothing) < 1.0:
        raise ValueError(f"label_smoothing must lie in [0, 1), got {label_smoothing!r}")
    if logits.dim() != 2:
        raise ValueError(f"contrastive_ce: logits must be 2-D, got shape {tuple(logits.shape)}")
    n = logits.shape[0]
    if targets is None:
        if logits.shape[0] != logits.shape[1]:
            raise ValueError(
                f"contrastive_ce: without targets the logits must be square, got shape {tuple(logits.shape)}"
            )
        targets = torch.arange(n, device=logits.device)
    elif targets.shape != (n,):
        raise ValueError(f"contrastive_ce: targets must have shape ({n},), got {tuple(targets.shape)}")
    if positive_in_denominator:
        return nn.functional.cross_entropy(logits, targets, label_smoothing=label_smoothing)
    if label_smoothing:
        raise ValueError("label smoothing is only defined with the positive in the denominator")
    if logits.shape[1] < 2:
        raise ValueError("the decoupled InfoNCE (positive excluded) needs at least 2 candidates")
    pos = logits.gather(1, targets[:, None]).squeeze(1)
    neg = logits.scatter(1, targets[:, None], float("-inf"))
    return (torch.logsumexp(neg, dim=1) - pos).mean()


def gather_candidates(
    zs: Sequence[torch.Tensor], gather_distributed: bool
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Candidates for contrastive negatives and the column of each local row's positive among them.

    With ``gather_distributed`` and an initialized process group, every tensor is all-gathered with gradients
    (:func:`mmib.utils.dist.gather_with_grad`) and the targets are offset by this process's first row; otherwise
    (no process group, one process, or the flag off) the tensors are returned unchanged with targets ``0..N-1``.
    """
    from mmib.utils.dist import gather_with_grad, is_dist, local_offset

    n = zs[0].shape[0]
    targets = torch.arange(n, device=zs[0].device)
    if gather_distributed and is_dist():
        gathered = [gather_with_grad(z) for z in zs]
        if gathered[0].shape[0] != n:
            targets = targets + local_offset(n)
        return gathered, targets
    return list(zs), targets
