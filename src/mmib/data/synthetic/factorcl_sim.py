"""``factorcl_sim``: FactorCL's controlled shared/unique synthetic data (Liang et al. 2023, §4.1, App. D.2, spec
A.8.2), in the form of the authors' code (pliang279/FactorCL ``Synthetic/dataset.py``) with a unique-ratio knob.

Latents w_s (shared), w_1, w_2 (unique) ~ N(0, σ_w² I) of sizes ``shared_dim``, ``unique_dim``; modalities

    x_1 = [w_1, w_s] T_1 + σ ε_1,   x_2 = [w_2, w_s] T_2 + σ ε_2,    T_i ~ U(0, 1)^{d_in × dim} (code)

Label: of ``label_dim`` label coordinates a fraction ``unique_ratio`` is taken from the unique latents (split between
w_1 and w_2) and the rest from w_s; y = 1[Σ selected + σ_y η ≥ 0] (code: 1[mean ≥ 0]; σ_y = ``label_noise``).
``unique_ratio`` = 0 is the multi-view-redundant end, 1 the fully unique end (FactorCL Fig. 1's x-axis).

Exact information (bits; ``information`` attribute): a = Σ selected latents is Gaussian and so is a | X_A for any
set A of modalities (posterior variance from the covariances), so I(X_A; Y) = H(Y) − E[h(Φ(μ / s))] is a 1-D
Gauss–Hermite integral; I(X1; X2) is the Gaussian closed form. From them FactorCL's S = I(X1;X2;Y), U_i = I(X_i;Y|X_−i)
and the PID (minimum-MI redundancy) are given.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr

from mmib.data.dataset import DataValidationError, MultimodalDataset
from mmib.data.registry import register_dataset
from mmib.data.spec import DatasetSpec, ModalitySpec


def _hb(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-300, 1 - 1e-16)
    q = 1 - p
    return -(p * np.log2(p) + np.where(q > 0, q * np.log2(np.maximum(q, 1e-300)), 0.0))


def _label_information(var_a: float, post_var: float, label_var: float, nodes: int = 200) -> float:
    """I(X_A; Y) for Y = 1[a + σ_y η >= 0], a | X_A ~ N(μ, post_var), μ ~ N(0, var_a − post_var)."""
    spread = max(var_a - post_var, 0.0)
    s = math.sqrt(post_var + label_var)
    if spread <= 1e-15:
        return 0.0
    if s <= 1e-12:
        return 1.0
    x, w = np.polynomial.hermite_e.hermegauss(nodes)  # ∫ f(x) exp(−x²/2)
    mu = math.sqrt(spread) * x
    cond = float((w * _hb(ndtr(mu / s))).sum() / math.sqrt(2 * math.pi))
    return 1.0 - cond


def factorcl_information(t1: np.ndarray, t2: np.ndarray, shared_dim: int, unique_dim: int, sel: np.ndarray,
                         latent_var: float, noise: float, label_noise: float) -> dict:
    """Exact information values of the generator (bits); ``sel`` is the 0/1 selection over [w_s, w_1, w_2]."""
    ds, du = shared_dim, unique_dim
    d = ds + 2 * du
    # x_i = A_i w + noise, w = [w_s, w_1, w_2]
    a1 = np.zeros((t1.shape[1], d))
    a1[:, ds : ds + du] = t1[:du].T
    a1[:, :ds] = t1[du:].T
    a2 = np.zeros((t2.shape[1], d))
    a2[:, ds + du :] = t2[:du].T
    a2[:, :ds] = t2[du:].T
    sw = latent_var * np.eye(d)
    c = sel.astype(float)
    var_a = float(c @ sw @ c)

    def post_var(a: np.ndarray) -> float:
        sxx = a @ sw @ a.T + noise**2 * np.eye(a.shape[0])
        sxa = a @ sw @ c
        return float(var_a - sxa @ np.linalg.solve(sxx, sxa))

    if noise <= 0:
        raise DataValidationError("factorcl_sim: exact information needs noise > 0")
    i1 = _label_information(var_a, post_var(a1), label_noise**2)
    i2 = _label_information(var_a, post_var(a2), label_noise**2)
    i12 = _label_information(var_a, post_var(np.concatenate([a1, a2])), label_noise**2)
    s11 = a1 @ sw @ a1.T + noise**2 * np.eye(a1.shape[0])
    s22 = a2 @ sw @ a2.T + noise**2 * np.eye(a2.shape[0])
    a12 = np.concatenate([a1, a2])
    s = a12 @ sw @ a12.T + noise**2 * np.eye(a12.shape[0])
    mi_x = 0.5 * (np.linalg.slogdet(s11)[1] + np.linalg.slogdet(s22)[1] - np.linalg.slogdet(s)[1]) / math.log(2)
    red = min(i1, i2)
    return {
        "units": "bits",
        "H_Y": 1.0,
        "I_X1_Y": i1, "I_X2_Y": i2, "I_X1X2_Y": i12, "I_X1_X2": float(mi_x),
        "FactorCL": {"S": i1 + i2 - i12, "U1": i12 - i2, "U2": i12 - i1},
        "PID": {"R": red, "U1": i1 - red, "U2": i2 - red, "S": i12 - i1 - i2 + red},
    }


def make_factorcl_sim(n_samples: int = 10000, shared_dim: int = 10, unique_dim: int = 6, dim: int = 100,
                      label_dim: int = 10, unique_ratio: float = 0.5, latent_var: float = 0.5, noise: float = 0.1,
                      label_noise: float = 0.0, seed: int = 0) -> MultimodalDataset:
    """FactorCL's shared/unique generator (module docstring)."""
    if not 0 <= unique_ratio <= 1:
        raise DataValidationError(f"factorcl_sim: unique_ratio must lie in [0, 1], got {unique_ratio}")
    if min(shared_dim, unique_dim, label_dim) < 1 or n_samples < 2:
        raise DataValidationError("factorcl_sim: shared_dim, unique_dim, label_dim >= 1 and n_samples >= 2 needed")
    d_in = shared_dim + unique_dim
    if dim < d_in:
        raise DataValidationError(f"factorcl_sim: dim ({dim}) must be >= shared_dim + unique_dim ({d_in})")
    k_u = int(round(unique_ratio * label_dim))
    k_s = label_dim - k_u
    k_1, k_2 = (k_u + 1) // 2, k_u // 2
    if k_s > shared_dim or k_1 > unique_dim:
        raise DataValidationError(f"factorcl_sim: label_dim={label_dim} at unique_ratio={unique_ratio} needs "
                                  f"{k_s} shared and {k_1} unique coordinates; have {shared_dim} and {unique_dim}")
    if latent_var <= 0 or noise < 0 or label_noise < 0:
        raise DataValidationError("factorcl_sim: need latent_var > 0, noise >= 0, label_noise >= 0")
    world = np.random.default_rng(seed)
    t1 = world.uniform(0, 1, (d_in, dim))
    t2 = world.uniform(0, 1, (d_in, dim))
    rng = np.random.default_rng([seed, 7])
    sd = math.sqrt(latent_var)
    ws = sd * rng.standard_normal((n_samples, shared_dim))
    w1 = sd * rng.standard_normal((n_samples, unique_dim))
    w2 = sd * rng.standard_normal((n_samples, unique_dim))
    x1 = np.concatenate([w1, ws], 1) @ t1 + noise * rng.standard_normal((n_samples, dim))
    x2 = np.concatenate([w2, ws], 1) @ t2 + noise * rng.standard_normal((n_samples, dim))
    sel = np.zeros(shared_dim + 2 * unique_dim)
    sel[:k_s] = 1
    sel[shared_dim : shared_dim + k_1] = 1
    sel[shared_dim + unique_dim : shared_dim + unique_dim + k_2] = 1
    w = np.concatenate([ws, w1, w2], 1)
    score = w @ sel + label_noise * rng.standard_normal(n_samples)
    y = (score >= 0).astype(np.int64)
    spec = DatasetSpec(
        name="factorcl_sim",
        modalities=(ModalitySpec("x1", "vector", (dim,)), ModalitySpec("x2", "vector", (dim,))),
        task="classification", n_classes=2,
        latents={"shared": 0, "unique_1": 0, "unique_2": 0, "label_shared": 0, "label_unique_1": 0,
                 "label_unique_2": 0},
        description=f"FactorCL shared/unique synthetic, unique ratio {unique_ratio}",
    )
    latents = {"shared": ws.astype(np.float32), "unique_1": w1.astype(np.float32), "unique_2": w2.astype(np.float32),
               "label_shared": ws[:, :k_s].sum(1).astype(np.float32),
               "label_unique_1": w1[:, :k_1].sum(1).astype(np.float32),
               "label_unique_2": w2[:, :k_2].sum(1).astype(np.float32)}
    ds = MultimodalDataset(spec, {"x1": x1.astype(np.float32), "x2": x2.astype(np.float32)}, y=y, latents=latents)
    info = factorcl_information(t1, t2, shared_dim, unique_dim, sel, latent_var, noise, label_noise) if noise > 0 else None
    if info is not None:
        info.update({"unique_ratio": unique_ratio, "label_coordinates": {"shared": k_s, "unique_1": k_1, "unique_2": k_2}})
    ds.information = info
    return ds


@register_dataset("factorcl_sim", description="FactorCL's controlled shared/unique synthetic (unique-ratio sweep)")
def load_factorcl_sim(n_samples: int = 10000, shared_dim: int = 10, unique_dim: int = 6, dim: int = 100,
                      label_dim: int = 10, unique_ratio: float = 0.5, latent_var: float = 0.5, noise: float = 0.1,
                      label_noise: float = 0.0, seed: int = 0) -> MultimodalDataset:
    """FactorCL's shared/unique generator with exact information values (spec A.8.2)."""
    return make_factorcl_sim(n_samples, shared_dim, unique_dim, dim, label_dim, unique_ratio, latent_var, noise,
                             label_noise, seed)
