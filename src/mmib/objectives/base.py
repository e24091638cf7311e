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


#: the floor of a learned temperature when none is configured (or the initial value, where that is lower)
DEFAULT_MIN_TEMPERATURE = 1e-3


def resolve_min_temperature(temperature: float, min_temperature: float | None, who: str = "temperature") -> float:
    """The floor of a learned temperature: ``min_temperature`` if given (any value in (0, temperature]), else
    ``min(DEFAULT_MIN_TEMPERATURE, temperature)`` — so a temperature below 1e-3 never needs a floor setting.

    Raises:
        ValueError: if ``temperature`` is not a finite number > 0, or ``min_temperature`` is not in (0, temperature].
    """
    if (isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not math.isfinite(temperature)
            or temperature <= 0):
        raise ValueError(f"{who} must be a finite number > 0, got {temperature!r}")
    if min_temperature is None:
        return min(DEFAULT_MIN_TEMPERATURE, float(temperature))
    if (isinstance(min_temperature, bool) or not isinstance(min_temperature, (int, float))
            or not math.isfinite(min_temperature) or min_temperature <= 0 or min_temperature > temperature):
        raise ValueError(f"min_temperature must lie in (0, temperature={temperature!r}], got {min_temperature!r}")
    return float(min_temperature)


class _OffsetScalar(nn.Module):
    """A scalar ``init + offset``: ``init`` is a Python float (exact in any dtype), ``offset`` a 0-d tensor that
    starts at 0 — a parameter when learned, a buffer otherwise. Cast to float64, the value is ``init`` to the last
    bit (a float32 tensor initialized with ``init`` would carry float32's rounding, ~1e-8 relative, into float64)."""

    _offset_name = "offset"
    _legacy_name = ""  # the state-dict key of the former single tensor holding init + offset (checkpoints)

    def __init__(self, init: float, learnable: bool) -> None:
        super().__init__()
        self.init = float(init)
        self.learnable = bool(learnable)
        zero = torch.zeros(())
        if self.learnable:
            setattr(self, self._offset_name, nn.Parameter(zero))
        else:
            self.register_buffer(self._offset_name, zero)

    def raw(self) -> torch.Tensor:
        return getattr(self, self._offset_name) + self.init

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        old, new = prefix + self._legacy_name, prefix + self._offset_name
        if self._legacy_name and old in state_dict and new not in state_dict:
            state_dict[new] = state_dict.pop(old) - self.init
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class Temperature(_OffsetScalar):
    """A contrastive temperature τ, fixed or learned.

    Learned temperatures are parameterized as ``log(1/τ)`` (CLIP's logit scale) and clamped so that
    ``τ >= min_temperature`` (default ``min(1e-3, temperature)``; any value in (0, temperature] can be configured).
    A fixed temperature is used as given, however small. Use :meth:`scale` (= 1/τ) to multiply similarities.
    The log scale is ``log(1/τ₀) + log_scale_offset`` with the initial value held as a Python float, so a module cast
    to float64 computes with τ₀ exactly (:class:`_OffsetScalar`).

    Raises:
        ValueError: if ``temperature`` is not a finite positive number or ``min_temperature`` not in (0, temperature].
    """

    _offset_name = "log_scale_offset"
    _legacy_name = "log_scale"

    def __init__(self, temperature: float = 0.07, learnable: bool = False, min_temperature: float | None = None):
        floor = resolve_min_temperature(temperature, min_temperature)
        super().__init__(math.log(1.0 / temperature), learnable)
        self.min_temperature = floor
        self.initial = float(temperature)
        self.max_log_scale = math.log(1.0 / self.min_temperature)

    @property
    def log_scale(self) -> torch.Tensor:
        """log(1/τ) before the clamp."""
        return self.raw()

    def scale(self) -> torch.Tensor:
        if not self.learnable:
            return self.raw().exp()
        return self.raw().clamp(max=self.max_log_scale).exp()

    @property
    def value(self) -> float:
        return float(1.0 / self.scale().detach())

    def extra_repr(self) -> str:
        return f"temperature={self.value:.4g}, learnable={self.learnable}, min_temperature={self.min_temperature:.3g}"


def temperatures(module: nn.Module) -> dict[str, nn.Module]:
    """Every temperature inside ``module`` by its qualified name (``objective.temperature``): the modules with a
    ``value`` (τ now), ``initial`` (τ at construction) and ``learnable`` — :class:`Temperature` and GRAM's
    ``DirectTemperature``."""
    return {name: m for name, m in module.named_modules()
            if isinstance(m, _OffsetScalar) and hasattr(m, "initial") and hasattr(m, "value")}


def temperature_parameters(module: nn.Module) -> list[nn.Parameter]:
    """The parameters of the learned temperatures inside ``module`` (for a separate learning rate)."""
    return [p for t in temperatures(module).values() if t.learnable for p in t.parameters(recurse=False)]


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
