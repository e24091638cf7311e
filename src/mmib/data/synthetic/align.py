"""``sim_align``: M-modality synthetic data with a known information structure, for the alignment objectives.

Generative model (all latents returned, per sample n):

- **essence** e ∈ R^{essence_dim}, e ~ N(0, I): shared by *every* modality. The label is the nearest of
  ``n_classes`` fixed random prototypes, ``y = argmin_c ‖e − μ_c‖`` — a deterministic function of the essence.
- **nuisance** ν^(m) ∈ R^{nuisance_dim}, ν^(m) ~ N(0, nuisance_scale² I), independent per modality: information that
  only modality m carries (what the minimality terms should discard).
- **shares** s^(m) ∈ {0, …, K−1} uniform and independent, K = ``n_synergy_values``, and the **synergy**
  u = (Σ_m s^(m)) mod K: any M−1 shares are independent of u, all M determine it — information that only the *set*
  of all modalities determines (I(u; x^S) = 0 for every strict subset S, I(u; x^[M]) = ln K).
- Modality m observes x^(m) = W_m [e + essence_noise·ε^(m); ν^(m); cos(2π s^(m)/K); sin(2π s^(m)/K)] + noise_std·η^(m)
  with a fixed random mixing matrix W_m (modality_dim × (essence_dim + nuisance_dim + 2), columns of norm 1) and
  independent Gaussian ε^(m), η^(m). Each modality sees the essence through its own noise, so the essence is
  better determined by more modalities: "the gain grows with M" can be measured (the tests check that a linear read-out
  of the essence improves with M).

Latents: ``essence`` (N, essence_dim), ``synergy`` (N,), ``share_<m>`` (N,), ``nuisance_<m>`` (N, nuisance_dim).
Modalities are named ``m0 … m{M−1}``. Everything is drawn from one ``numpy`` generator seeded with ``seed``; the
mixing matrices and prototypes come from a separate stream seeded with ``structure_seed`` so that two data sets with
different ``seed`` share the same structure (train/test draws).
"""

from __future__ import annotations

import numpy as np

from mmib.data.dataset import DataValidationError, MultimodalDataset
from mmib.data.registry import register_dataset
from mmib.data.spec import DatasetSpec, ModalitySpec

SIM_ALIGN_MAX_MODALITIES = 6


def _check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or value < low
        or (high is not None and value > high)
    ):
        bound = f"in {low}..{high}" if high is not None else f">= {low}"
        raise DataValidationError(f"sim_align: {name} must be an int {bound}, got {value!r}")
    return int(value)


def _check_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0:
        raise DataValidationError(f"sim_align: {name} must be a finite number >= 0, got {value!r}")
    return float(value)


@register_dataset(
    "sim_align",
    description="synthetic M-modality data (M=2..6): shared essence, per-modality nuisance, synergy of all modalities",
)
def make_sim_align(
    n_samples: int = 2000,
    n_modalities: int = 3,
    modality_dim: int = 32,
    essence_dim: int = 8,
    nuisance_dim: int = 8,
    n_classes: int = 4,
    n_synergy_values: int = 4,
    essence_noise: float = 0.5,
    nuisance_scale: float = 1.0,
    noise_std: float = 0.1,
    seed: int = 0,
    structure_seed: int = 1234,
) -> MultimodalDataset:
    """Synthetic alignment data with M = ``n_modalities`` modalities and ground-truth latents (see module doc)."""
    n = _check_int("n_samples", n_samples, 1)
    m = _check_int("n_modalities", n_modalities, 2, SIM_ALIGN_MAX_MODALITIES)
    dx = _check_int("modality_dim", modality_dim, 1)
    de = _check_int("essence_dim", essence_dim, 1)
    dn = _check_int("nuisance_dim", nuisance_dim, 0)
    n_cls = _check_int("n_classes", n_classes, 2)
    k = _check_int("n_synergy_values", n_synergy_values, 2)
    e_noise = _check_float("essence_noise", essence_noise)
    nu_scale = _check_float("nuisance_scale", nuisance_scale)
    x_noise = _check_float("noise_std", noise_std)
    seed = _check_int("seed", seed, 0)
    structure_seed = _check_int("structure_seed", structure_seed, 0)

    structure = np.random.default_rng(structure_seed)
    prototypes = structure.standard_normal((n_cls, de))
    mixing = []
    for _ in range(m):
        w = structure.standard_normal((dx, de + dn + 2))
        mixing.append(w / np.linalg.norm(w, axis=0, keepdims=True))

    rng = np.random.default_rng(seed)
    essence = rng.standard_normal((n, de))
    label = np.argmin(((essence[:, None, :] - prototypes[None]) ** 2).sum(-1), axis=1).astype(np.int64)
    shares = rng.integers(0, k, size=(m, n))
    synergy = shares.sum(0) % k
    names = [f"m{i}" for i in range(m)]
    x, latents = {}, {"essence": essence.astype(np.float32), "synergy": synergy.astype(np.int64)}
    for i, name in enumerate(names):
        nuisance = nu_scale * rng.standard_normal((n, dn))
        angle = 2 * np.pi * shares[i] / k
        source = np.concatenate(
            [
                essence + e_noise * rng.standard_normal((n, de)),
                nuisance,
                np.cos(angle)[:, None],
                np.sin(angle)[:, None],
            ],
            axis=1,
        )
        x[name] = (source @ mixing[i].T + x_noise * rng.standard_normal((n, dx))).astype(np.float32)
        latents[f"share_{name}"] = shares[i].astype(np.int64)
        latents[f"nuisance_{name}"] = nuisance.astype(np.float32)

    latent_kinds = {"essence": 0, "synergy": k}
    for name in names:
        latent_kinds[f"share_{name}"] = k
        latent_kinds[f"nuisance_{name}"] = 0
    spec = DatasetSpec(
        name="sim_align",
        modalities=tuple(ModalitySpec(name, "vector", (dx,)) for name in names),
        task="classification",
        n_classes=n_cls,
        latents=latent_kinds,
        description=f"synthetic alignment data, M={m}: shared essence (label), per-modality nuisance, synergy",
    )
    return MultimodalDataset(spec, x, y=label, latents=latents)
