"""OMIB's objective pieces (Wu et al., "Learning Optimal Multimodal Information Bottleneck Representations",
ICML 2025; spec ``specs/omib.md`` §3).

* :func:`prediction_divergence` — per-sample ``KL(p(ŷ_i | ξ, z_i) || p(ŷ | ξ))`` between a task-relevance branch
  (TRB) and the fused head (eq. 11's summand). For regression and SVDD, where no predictive distribution exists,
  the squared distance of the outputs (a fixed-variance Gaussian; spec §3.4 [INTERP], σ cancels in the ratio).
* :func:`dynamic_weight` — ``r = 1 − tanh(ln R)`` (eq. 11; App. D eq. 68 for M ≥ 3 with modality 1 as the reference),
  R the batch mean of the per-sample ratios (literal) or the ratio of the means (eqs. 47–49). Identity:
  ``r = 2 / (1 + R²)`` ∈ (0, 2).
* :func:`beta_bounds` — ``[M_l, M_u]`` of Prop. 5.7 / §5.2 (M = 2) and App. D (M = 3); for M ≥ 4 our generalisation.
* :func:`sample_beta` — β drawn once from ``[M_l, M_u]`` (Alg. 2 line 5; log-uniform by default).
* :func:`estimate_information` — H(v_k) = I(v_k; v_k) and I(v_i; v_j) with MINE (App. E) via
  :func:`mmib.info.estimate_mi`.
* :class:`OMFLoss` — L_OMF (eq. 10 / eq. 67): task NLL of the fused head + β (KL_1 + Σ_m r_m KL_m).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

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


def joint_entropy_upper(entropies: Sequence[float], mutual_informations: Mapping[tuple[int, int], float]) -> float:
    """An upper estimate of H(v_1, …, v_M) from the marginal entropies and pairwise MIs.

    M = 2: ``H1 + H2 − I12`` (exact, Prop. 5.7). M = 3: ``ΣH − (2/3) ΣI`` (App. D, Lemma D.4). M ≥ 4 [ours]: the
    Chow–Liu tree bound ``ΣH − Σ_{(i,j) ∈ T} I_ij`` over a maximum spanning tree T of the pairwise MIs (valid for
    any spanning tree: H(V) ≤ Σ_m H(v_m | v_parent(m)))."""
    h = [float(v) for v in entropies]
    m = len(h)
    mi = {tuple(sorted(k)): float(v) for k, v in mutual_informations.items()}
    need = list(itertools.combinations(range(m), 2))
    missing = [p for p in need if p not in mi]
    if missing:
        raise ValueError(f"joint_entropy_upper: pairwise mutual informations missing for pairs {missing}")
    if m == 2:
        return h[0] + h[1] - mi[(0, 1)]
    if m == 3:
        return sum(h) - (2.0 / 3.0) * sum(mi[p] for p in need)
    # maximum spanning tree (Prim)
    in_tree, total = {0}, 0.0
    while len(in_tree) < m:
        best = max(((i, j) for i in in_tree for j in range(m) if j not in in_tree),
                   key=lambda p: mi[tuple(sorted(p))])
        total += mi[tuple(sorted(best))]
        in_tree.add(best[1])
    return sum(h) - total


def beta_bounds(entropies: Sequence[float], mutual_informations: Mapping[tuple[int, int], float]) -> tuple[float, float]:
    """``(M_l, M_u)``: ``M_l = 1/((2M−1) Σ H(v_m))``, ``M_u = 1/((2M−1) Ĥ(v_1..v_M))`` — for M = 2 the paper's
    ``[1/(3(H1+H2)), 1/(3(H1+H2−I12))]`` (§5.2), for M = 3 App. D's factor 5 and ``ΣH − (2/3)ΣI``; the factor
    ``2M−1`` bounds ``1 + Σ r_m`` since r_m < 2 (for M ≥ 4 the generalisation is ours, spec §3.6).

    Raises:
        ValueError: fewer than 2 modalities, non-finite or negative estimates, an MI larger than an entropy, or a
            non-positive joint entropy.
    """
    h = [float(v) for v in entropies]
    if len(h) < 2:
        raise ValueError(f"beta_bounds: needs >= 2 modalities, got {len(h)}")
    for i, v in enumerate(h):
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"beta_bounds: H(v_{i + 1}) must be finite and > 0, got {v}")
    for k, v in mutual_informations.items():
        if not math.isfinite(float(v)) or float(v) < 0:
            raise ValueError(f"beta_bounds: I{k} must be finite and >= 0, got {v}")
    joint = joint_entropy_upper(h, mutual_informations)
    if joint <= 0:
        raise ValueError(f"beta_bounds: the joint entropy estimate {joint} is <= 0 (an MI exceeds the entropies); "
                         "the MINE estimates are inconsistent")
    factor = 2 * len(h) - 1
    return 1.0 / (factor * sum(h)), 1.0 / (factor * joint)


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


@dataclass
class InformationEstimates:
    """MINE estimates (nats) of H(v_m) = I(v_m; v_m) and I(v_i; v_j), and the β interval they imply."""

    entropies: list[float]
    mutual_informations: dict[tuple[int, int], float]
    lower: float = field(init=False)
    upper: float = field(init=False)
    settings: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lower, self.upper = beta_bounds(self.entropies, self.mutual_informations)

    def to_dict(self) -> dict:
        return {"entropies": list(self.entropies),
                "mutual_informations": {f"{i},{j}": v for (i, j), v in self.mutual_informations.items()},
                "M_l": self.lower, "M_u": self.upper, "settings": dict(self.settings)}


def mine_cache_path(views: Sequence[torch.Tensor], settings: Mapping) -> Path:
    """Where the MINE estimates of these exact training views and settings are kept: OMIB's ablations and reruns on
    the same data (the same seed's split) reuse them instead of spending minutes on the same estimates again.

    The key is a SHA-256 of the views' bytes and shapes and of the MINE settings; the folder is
    ``$MMIB_CACHE_DIR/omib_mine`` (default ``~/.cache/mmib/omib_mine``). ``method.mine.cache=false`` turns it off."""
    h = hashlib.sha256()
    for v in views:
        a = torch.as_tensor(v).detach().float().cpu().contiguous()
        h.update(repr(tuple(a.shape)).encode())
        h.update(a.numpy().tobytes())
    h.update(json.dumps({k: settings[k] for k in sorted(settings)}, sort_keys=True, default=str).encode())
    root = Path(os.environ.get("MMIB_CACHE_DIR") or Path.home() / ".cache" / "mmib")
    return root / "omib_mine" / f"{h.hexdigest()[:32]}.json"


def estimate_information(views: Sequence[torch.Tensor], steps: int = 2000, batch_size: int = 256, lr: float = 1e-4,
                         hidden_dim: int = 256, seed: int = 0, eval_batches: int = 50) -> InformationEstimates:
    """MINE estimates of each H(v_m) (as I(v_m; v_m), App. E eq. 100) and each pairwise I(v_i; v_j) (eq. 99), with a
    two-layer ReLU concat critic ``T([x; z])`` and the moving-average bias correction (spec §3.7 [INTERP]).

    For continuous data I(v; v) is infinite: the finite value depends on the critic and the budget (spec §3.7)."""
    from mmib.info import estimate_mi

    views = [torch.as_tensor(v).float().reshape(v.shape[0], -1) for v in views]
    if len(views) < 2:
        raise ValueError(f"estimate_information: needs >= 2 modalities, got {len(views)}")
    n = views[0].shape[0]
    if any(v.shape[0] != n for v in views):
        raise ValueError("estimate_information: every modality needs the same number of samples")
    bs = min(batch_size, n)
    kw = dict(method="mine", steps=steps, batch_size=bs, lr=lr, critic="concat",
              critic_kwargs={"hidden_dim": hidden_dim}, eval_batches=eval_batches,
              ema=0.0, standardize=False)  # OMIB's protocol: last weights, raw views (not estimate_mi's defaults)
    raw_h = [float(estimate_mi(v, v, seed=seed + i, **kw)) for i, v in enumerate(views)]
    raw_i = {}
    for k, (i, j) in enumerate(itertools.combinations(range(len(views)), 2)):
        raw_i[(i, j)] = float(estimate_mi(views[i], views[j], seed=seed + 100 + k, **kw))
    ent = [max(h, 1e-6) for h in raw_h]
    mi = {k: max(v, 0.0) for k, v in raw_i.items()}
    settings = {"estimator": "mine", "critic": "concat (2-layer ReLU)", "hidden_dim": hidden_dim, "steps": steps,
                "batch_size": bs, "lr": lr, "eval_batches": eval_batches, "seed": seed, "n_samples": n,
                "raw_entropies": raw_h,
                "raw_mutual_informations": {f"{i},{j}": v for (i, j), v in raw_i.items()},
                "note": "negative MI estimates clipped to 0, entropies to 1e-6"}
    return InformationEstimates(ent, mi, settings)


class OMFLoss(nn.Module):
    """L_OMF (eq. 10; eq. 67 for M = 3): ``mean_n [ −log q(y_n | ξ_n) + β (KL_1,n + Σ_{m≥2} r_{m−1} KL_m,n) ]``.

    Args:
        beta: β >= 0, fixed during main training.
        task: ``classification`` | ``regression`` | ``svdd``.
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
