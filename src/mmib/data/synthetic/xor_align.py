"""``xor_align``: M modalities that are pairwise independent but jointly dependent (the positive control of Symile),
and its negative control (pairwise dependent, no higher-order structure).

Generative model (per sample n; K = ``n_symbols``, M = ``n_modalities``):

- ``structure="xor"``: symbols a_1, …, a_{M−1} ~ Uniform{0, …, K−1} independent, and a_M = (Σ_{i<M} a_i) mod K.
  Every strict subset of the M symbols is independent (any M−1 of them are i.i.d. uniform), so every pair of
  modalities is independent — I(a_i; a_j) = 0 — while all M together determine each other:
  I(a_M; a_1, …, a_{M−1}) = ln K. For K = 2, M = 3 this is c = a XOR b (the Symile paper's §5.1 data, binary).
- ``structure="pairwise"`` (negative control): one shared symbol s ~ Uniform{0, …, K−1} and a_m = s for every m: the
  dependence is pairwise (redundant), with no synergy — what the M-th symbol shares with the others is what it shares
  with any single one of them, I(a_M; a_1, …, a_{M−1}) = I(a_M; a_1).
- ``flip``: each a_m is then independently replaced by a fresh uniform symbol with probability ``flip`` (both
  structures; it keeps the "xor" data pairwise independent and lowers every dependence).
- Modality m observes x^(m) = C_m[a_m] + ``noise_std``·ε^(m), ε ~ N(0, I): C_m is a fixed random codebook of K rows in
  R^``modality_dim``, each row Gaussian rescaled to norm √``modality_dim`` (coordinates of unit scale, so
  ``noise_std`` is a per-coordinate noise-to-signal ratio).

The label y is a_M, the last modality's symbol (K classes, uniform): the retrieval ``m0+…+m{M−2}->m{M−1}`` with the
class-level metric ``class_top1`` asks whether the best candidate of the last modality carries the symbol that the
others determine; chance is 1/K. Latents: ``symbol_<m>`` (N,) per modality (and ``shared`` for "pairwise").
Everything is drawn from a ``numpy`` generator seeded with ``seed``; the codebooks from one seeded with
``structure_seed``.
"""

from __future__ import annotations

import numpy as np

from mmib.data.dataset import DataValidationError, MultimodalDataset
from mmib.data.registry import register_dataset
from mmib.data.spec import DatasetSpec, ModalitySpec

XOR_ALIGN_STRUCTURES = ("xor", "pairwise")
XOR_ALIGN_MAX_MODALITIES = 6


def _int(name: str, value: object, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low or (
            high is not None and value > high):
        bound = f"in {low}..{high}" if high is not None else f">= {low}"
        raise DataValidationError(f"xor_align: {name} must be an int {bound}, got {value!r}")
    return int(value)


def _float(name: str, value: object, high: float | None = None) -> float:
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value) or value < 0
            or (high is not None and value > high)):
        rng = f"in [0, {high}]" if high is not None else ">= 0"
        raise DataValidationError(f"xor_align: {name} must be a finite number {rng}, got {value!r}")
    return float(value)


def xor_align_symbols(n: int, m: int, k: int, structure: str, flip: float,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """The (M, N) symbols of the generative model (module doc) and the shared symbol (``"pairwise"``) or None."""
    shared = None
    if structure == "xor":
        free = rng.integers(0, k, size=(m - 1, n))
        symbols = np.concatenate([free, free.sum(0, keepdims=True) % k])
    else:
        shared = rng.integers(0, k, size=n)
        symbols = np.repeat(shared[None], m, axis=0)
    if flip > 0:
        redraw = rng.random((m, n)) < flip
        symbols = np.where(redraw, rng.integers(0, k, size=(m, n)), symbols)
    return symbols.astype(np.int64), shared


@register_dataset(
    "xor_align",
    description="M modalities pairwise independent but jointly dependent (a_M = sum of the others mod K; "
                "structure=pairwise: the negative control)",
)
def make_xor_align(
    n_samples: int = 4000,
    n_modalities: int = 3,
    n_symbols: int = 4,
    modality_dim: int = 16,
    noise_std: float = 0.5,
    structure: str = "xor",
    flip: float = 0.0,
    seed: int = 0,
    structure_seed: int = 1234,
) -> MultimodalDataset:
    """Symbols per modality (``n_symbols``), a noisy random code of each in R^``modality_dim`` (see module doc)."""
    n = _int("n_samples", n_samples, 1)
    m = _int("n_modalities", n_modalities, 2, XOR_ALIGN_MAX_MODALITIES)
    k = _int("n_symbols", n_symbols, 2)
    dx = _int("modality_dim", modality_dim, 1)
    noise = _float("noise_std", noise_std)
    flip = _float("flip", flip, 1.0)
    if structure not in XOR_ALIGN_STRUCTURES:
        raise DataValidationError(f"xor_align: structure must be one of {XOR_ALIGN_STRUCTURES}, got {structure!r}")
    seed = _int("seed", seed, 0)
    structure_seed = _int("structure_seed", structure_seed, 0)

    codes = np.random.default_rng(structure_seed).standard_normal((m, k, dx))
    codes *= np.sqrt(dx) / np.linalg.norm(codes, axis=2, keepdims=True)
    rng = np.random.default_rng(seed)
    symbols, shared = xor_align_symbols(n, m, k, structure, flip, rng)
    names = [f"m{i}" for i in range(m)]
    x = {name: (codes[i][symbols[i]] + noise * rng.standard_normal((n, dx))).astype(np.float32)
         for i, name in enumerate(names)}
    latents = {f"symbol_{name}": symbols[i] for i, name in enumerate(names)}
    kinds = {f"symbol_{name}": k for name in names}
    if shared is not None:
        latents["shared"], kinds["shared"] = shared.astype(np.int64), k
    spec = DatasetSpec(
        name="xor_align",
        modalities=tuple(ModalitySpec(name, "vector", (dx,)) for name in names),
        task="classification",
        n_classes=k,
        latents=kinds,
        description=f"{structure} symbols, M={m}, K={k}: label = the last modality's symbol",
    )
    return MultimodalDataset(spec, x, y=symbols[-1].copy(), latents=latents)
