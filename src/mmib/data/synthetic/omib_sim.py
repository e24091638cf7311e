"""``omib_sim``: the synthetic data of OMIB (Wu et al., ICML 2025, App. F, §6.1–6.2; spec omib §4).

Independent standard-Gaussian blocks: task-relevant a0 (shared), a1 (modality I only), a2 (modality II only) and
superfluous b0 (shared), b1, b2 (specific). The two modalities are (paper §6.2 block order)

    x1 = [a0; b0; a1; b1],   x2 = [a0; b0; a2; b2]                       (Eqs. 101–102)

with the *same* copy of a0 and b0 in both, and a binary label from one random hyperplane δ ~ N(0, I), drawn once per
data set (shared by every split):

    y = 1[<δ, [a0; a1; a2]> > 0]                                         (Eq. 103)

Cases (spec §4.2, typos of the paper read as noted there): ``I`` (d11, d21) = (500, 100), modality I dominant;
``II`` = (100, 500), modality II dominant; ``III`` = (300, 300), balanced; d0 = d0' = 200.
The superfluous specific sizes d12, d22 are **not given** in the paper; the default 200 (= d0') is ours and both are
options. Every block is kept as a ground-truth latent (``a0 … b2``) for probes.

Three modalities (``n_modalities=3``, the spec's [OURS] extrapolation of Assumption D.1, not in the paper): 14
independent blocks a00, a11, a22, a33, a12, a13, a23 (relevant) and b00, b11, b22, b33, b12, b13, b23 (superfluous);
``x_m`` holds every block whose index set contains m; y = 1[<δ, [a00; a11; a22; a33; a12; a13; a23]> > 0].

:func:`reference_classifiers` computes Table 2's reference rows (logistic regression on each feature subset, the
authentic optimal MIB [a0; a1; a2] and the union) on the same split.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mmib.data.dataset import DataValidationError, MultimodalDataset
from mmib.data.registry import register_dataset
from mmib.data.spec import DatasetSpec, ModalitySpec

#: (d11, d21) of each case (spec omib §4.2)
OMIB_SIM_CASES = {"I": (500, 100), "II": (100, 500), "III": (300, 300)}
RELEVANT_BLOCKS = ("a0", "a1", "a2")
SUPERFLUOUS_BLOCKS = ("b0", "b1", "b2")
#: three-modality blocks (index set → name)
TRI_RELEVANT = ("a00", "a11", "a22", "a33", "a12", "a13", "a23")
TRI_SUPERFLUOUS = ("b00", "b11", "b22", "b33", "b12", "b13", "b23")


@dataclass(frozen=True)
class OMIBSimData:
    """Raw arrays of one draw: modalities, label, blocks and the hyperplane."""

    x: dict[str, np.ndarray]
    y: np.ndarray
    blocks: dict[str, np.ndarray]
    delta: np.ndarray
    relevant: tuple[str, ...]
    layout: dict[str, tuple[str, ...]]  # modality → its blocks, in order


def _check_dim(name: str, v: int, allow_zero: bool = True) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < (0 if allow_zero else 1):
        raise DataValidationError(f"omib_sim: {name} must be an integer >= {0 if allow_zero else 1}, got {v!r}")
    return int(v)


def make_omib_sim(n_samples: int = 10000, case: str = "I", d0: int = 200, d0_superfluous: int = 200,
                  d11: int | None = None, d21: int | None = None, d12: int = 200, d22: int = 200,
                  n_modalities: int = 2, tri_block_dim: int = 50, seed: int = 0) -> OMIBSimData:
    """Draw the OMIB synthetic data (see the module docstring). ``d11``/``d21`` override the case's sizes."""
    n = _check_dim("n_samples", n_samples, allow_zero=False)
    if n < 2:
        raise DataValidationError(f"omib_sim: n_samples must be >= 2, got {n}")
    rng = np.random.default_rng(seed)
    if n_modalities == 3:
        bd = _check_dim("tri_block_dim", tri_block_dim, allow_zero=False)
        blocks = {b: rng.standard_normal((n, bd)) for b in (*TRI_RELEVANT, *TRI_SUPERFLUOUS)}
        delta = rng.standard_normal(bd * len(TRI_RELEVANT))
        a = np.concatenate([blocks[b] for b in TRI_RELEVANT], axis=1)
        y = (a @ delta > 0).astype(np.int64)
        layout = {}
        for m in (1, 2, 3):
            names = [b for b in (*TRI_RELEVANT, *TRI_SUPERFLUOUS) if b[1:] == "00" or str(m) in b[1:]]
            layout[f"x{m}"] = tuple(names)
        x = {k: np.concatenate([blocks[b] for b in v], axis=1).astype(np.float32) for k, v in layout.items()}
        return OMIBSimData(x, y, blocks, delta, TRI_RELEVANT, layout)
    if n_modalities != 2:
        raise DataValidationError(f"omib_sim: n_modalities must be 2 or 3, got {n_modalities!r}")
    if case not in OMIB_SIM_CASES:
        raise DataValidationError(f"omib_sim: case must be one of {', '.join(OMIB_SIM_CASES)}, got {case!r}")
    c11, c21 = OMIB_SIM_CASES[case]
    dims = {"a0": _check_dim("d0", d0), "b0": _check_dim("d0_superfluous", d0_superfluous),
            "a1": _check_dim("d11", c11 if d11 is None else d11), "b1": _check_dim("d12", d12),
            "a2": _check_dim("d21", c21 if d21 is None else d21), "b2": _check_dim("d22", d22)}
    if dims["a0"] + dims["a1"] + dims["a2"] == 0:
        raise DataValidationError("omib_sim: the label needs at least one relevant dimension (d0 + d11 + d21 > 0)")
    # draw order of the spec's reference generator (spec §4.6)
    delta = rng.standard_normal(dims["a0"] + dims["a1"] + dims["a2"])
    blocks = {}
    for b in ("a0", "b0", "a1", "b1", "a2", "b2"):
        blocks[b] = rng.standard_normal((n, dims[b]))
    y = (np.concatenate([blocks["a0"], blocks["a1"], blocks["a2"]], axis=1) @ delta > 0).astype(np.int64)
    layout = {"x1": ("a0", "b0", "a1", "b1"), "x2": ("a0", "b0", "a2", "b2")}
    x = {k: np.concatenate([blocks[b] for b in v], axis=1).astype(np.float32) for k, v in layout.items()}
    if any(v.shape[1] == 0 for v in x.values()):
        raise DataValidationError("omib_sim: a modality has no dimensions")
    return OMIBSimData(x, y, blocks, delta, RELEVANT_BLOCKS, layout)


def bayes_accuracy(delta: np.ndarray, observed: np.ndarray) -> float:
    """Bayes-optimal accuracy of y = sign(<δ, a>) from the coordinates ``observed`` (bool mask over δ):
    ``1 - arccos(ρ)/π`` with ρ = ||δ_S|| / ||δ|| (spec §4.3)."""
    rho = float(np.linalg.norm(delta[observed]) / np.linalg.norm(delta))
    return 1.0 - math.acos(min(1.0, rho)) / math.pi


@register_dataset("omib_sim", description="OMIB synthetic SIM-I/II/III: shared/specific relevant and superfluous "
                  "Gaussian blocks, label from a random hyperplane")
def load_omib_sim(case: str = "I", n_samples: int = 10000, d0: int = 200, d0_superfluous: int = 200,
                  d11: int | None = None, d21: int | None = None, d12: int = 200, d22: int = 200,
                  n_modalities: int = 2, tri_block_dim: int = 50, seed: int = 0) -> MultimodalDataset:
    """OMIB's SIM-``case`` (I | II | III) with ground-truth blocks as latents (``n_modalities=3``: our extension)."""
    case = str(case)
    d = make_omib_sim(n_samples, case, d0, d0_superfluous, d11, d21, d12, d22, n_modalities, tri_block_dim, seed)
    spec = DatasetSpec(
        name="omib_sim",
        modalities=tuple(ModalitySpec(k, "vector", (v.shape[1],)) for k, v in d.x.items()),
        task="classification",
        n_classes=2,
        latents={b: 0 for b in d.blocks},
        description=(f"OMIB SIM-{case}" if n_modalities == 2 else "OMIB-style 3-modality synthetic (our extension)")
        + f"; blocks per modality: {d.layout}",
    )
    return MultimodalDataset(spec, d.x, y=d.y, latents={k: v.astype(np.float32) for k, v in d.blocks.items()})


def reference_feature_sets(blocks: Sequence[str], layout: Mapping[str, Sequence[str]],
                           relevant: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """Table 2's feature subsets, by name → blocks."""
    out: dict[str, tuple[str, ...]] = {}
    rel = tuple(relevant)
    if rel == RELEVANT_BLOCKS:
        out["a0"] = ("a0",)
        out["a1+a2"] = ("a1", "a2")
    for m, bl in layout.items():
        out[f"unimodal:{m}"] = tuple(bl)
    out["authentic_mib"] = rel
    out["union"] = tuple(dict.fromkeys(b for bl in layout.values() for b in bl))
    return out


def reference_classifiers(latents: Mapping[str, np.ndarray], y: np.ndarray, train_idx: np.ndarray,
                          test_idx: np.ndarray, layout: Mapping[str, Sequence[str]] | None = None,
                          relevant: Sequence[str] = RELEVANT_BLOCKS, C: float = 1.0, max_iter: int = 2000
                          ) -> dict[str, float]:
    """Test accuracy of an L2-regularised logistic regression (standardised features, fitted on ``train_idx``) on each
    of Table 2's feature sets: [a0], [a1; a2], each modality alone, the authentic optimal MIB [a0; a1; a2] and the
    union of both modalities (spec omib §4.4(b); the paper does not name its classifier)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    layout = dict(layout or {"x1": ("a0", "b0", "a1", "b1"), "x2": ("a0", "b0", "a2", "b2")})
    sets = reference_feature_sets(list(latents), layout, relevant)
    y = np.asarray(y)
    out = {}
    for name, bl in sets.items():
        missing = [b for b in bl if b not in latents]
        if missing:
            raise DataValidationError(f"reference_classifiers: latent block(s) {missing} not given")
        feats = np.concatenate([np.asarray(latents[b], dtype=np.float64) for b in bl], axis=1)
        if feats.shape[1] == 0:
            continue
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
        clf.fit(feats[train_idx], y[train_idx])
        out[name] = float((clf.predict(feats[test_idx]) == y[test_idx]).mean())
    return out
