"""The information OMIB's β interval needs (Wu et al., ICML 2025; spec ``specs/omib.md`` §3.6–3.7): MINE estimates
of each view's entropy and of every pair's mutual information, the interval ``[M_l, M_u]`` they imply, and where the
estimates are cached on disk.

* :func:`estimate_information` — H(v_k) = I(v_k; v_k) and I(v_i; v_j) with MINE (App. E) via
  :func:`mmib.info.estimate_mi` (trains one critic per quantity).
* :func:`beta_bounds` — ``[M_l, M_u]`` of Prop. 5.7 / §5.2 (M = 2) and App. D (M = 3); for M ≥ 4 our generalisation.
* :class:`InformationEstimates` — the estimates and their interval.
* :func:`mine_cache_path` — the file of :mod:`mmib.utils.cache` that keeps the estimates of given views and settings.

Example:
    >>> beta_bounds([2.0, 3.0], {(0, 1): 1.0})  # (1 / (3 · 5), 1 / (3 · 4))
    (0.06666666666666667, 0.08333333333333333)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from mmib.info.estimate import estimate_mi
from mmib.utils.cache import keyed_path

#: the sub-folder of the disk cache (``$MMIB_CACHE_DIR``, default ``~/.cache/mmib``) holding the MINE estimates
MINE_CACHE_KIND = "omib_mine"


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
    return keyed_path(MINE_CACHE_KIND, views, settings)


def estimate_information(views: Sequence[torch.Tensor], steps: int = 2000, batch_size: int = 256, lr: float = 1e-4,
                         hidden_dim: int = 256, seed: int = 0, eval_batches: int = 50) -> InformationEstimates:
    """MINE estimates of each H(v_m) (as I(v_m; v_m), App. E eq. 100) and each pairwise I(v_i; v_j) (eq. 99), with a
    two-layer ReLU concat critic ``T([x; z])`` and the moving-average bias correction (spec §3.7 [INTERP]).

    For continuous data I(v; v) is infinite: the finite value depends on the critic and the budget (spec §3.7)."""
    views = [torch.as_tensor(v).float().reshape(v.shape[0], -1) for v in views]
    if len(views) < 2:
        raise ValueError(f"estimate_information: needs >= 2 modalities, got {len(views)}")
    n = views[0].shape[0]
    if any(v.shape[0] != n for v in views):
        raise ValueError("estimate_information: every modality needs the same number of samples")
    bs = min(batch_size, n)
    kw = dict(method="mine", steps=steps, batch_size=bs, lr=lr, critic="concat",
              critic_kwargs={"hidden_dim": hidden_dim}, eval_batches=eval_batches,
              ema=0.0, standardize=False, input_map=None)  # OMIB's protocol: last weights, raw views (not
    # estimate_mi's defaults)
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
