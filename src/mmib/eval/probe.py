"""Downstream probes on frozen representations.

* ``linear``: softmax (multinomial logistic) regression trained with **cross-entropy** for classification, least
  squares for regression. This is the probe whose numbers the synergy claims depend on (FactorCL/CoMM spec D.3.1: a
  linear rule *not* trained with CE can reach 75 % on additive features of an XOR task; a CE-trained one cannot).
* ``mlp``: the papers' **4-layer MLP** predictor (3 hidden layers of ``hidden`` units + the output layer; OVA-IB
  §4 / B.2), trained with cross-entropy or MSE.

Both are trained with Adam on features standardized with train-split statistics (regression targets too), in
mini-batches (full batch when the train split is small), with early stopping on the validation loss (the best
validation state is restored) and a fixed seed; the metrics are computed on the test split. Every result names the
probe that produced it (:data:`PROBE_DESCRIPTIONS`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from mmib.errors import MMIBError
from mmib.eval.metrics import (
    classification_chance,
    classification_metrics,
    regression_chance,
    regression_metrics,
)
from mmib.nn.heads import MLP

PROBES = ("linear", "mlp")
TASKS = ("classification", "regression")

#: what each probe is, for tables and reports (task → probe → description)
PROBE_DESCRIPTIONS = {
    "classification": {"linear": "linear softmax regression (cross-entropy)",
                       "mlp": "4-layer MLP (cross-entropy)"},
    "regression": {"linear": "linear regression (least squares)", "mlp": "4-layer MLP (MSE)"},
}

__all__ = ["PROBES", "PROBE_DESCRIPTIONS", "ProbeConfig", "ProbeResult", "fit_probe", "train_probe",
           "classification_metrics", "regression_metrics"]


@dataclass
class ProbeConfig:
    """Settings of a probe.

    Attributes:
        kind: ``linear`` or ``mlp`` (4 layers: 3 hidden of ``hidden`` units).
        lr, weight_decay: Adam settings (lr default: 1e-2 linear, 1e-3 MLP).
        max_epochs: passes over the train split; patience: epochs without a better validation loss before stopping.
        batch_size: mini-batch size (the whole split when it is smaller).
        hidden: width of the MLP's hidden layers.
        seed: initialization and shuffling seed.
        threads: torch threads while the probe trains (None: leave as is). Probes are small: one thread is as fast
            and avoids the many-fold slowdown of oversubscribed cores when evaluations run side by side.
        class_weight: classification only. ``none`` (plain cross-entropy) or ``balanced`` (each class weighted by
            N / (C · N_c) on the train split, for training and early stopping alike): with a rare class, the plain
            probe can settle on the majority class, whose balanced accuracy is exactly chance whatever the
            features hold.
    """

    kind: str = "linear"
    lr: float | None = None
    weight_decay: float = 1e-4
    max_epochs: int = 300
    patience: int = 20
    batch_size: int = 2048
    hidden: int = 256
    seed: int = 0
    threads: int | None = 1
    class_weight: str = "none"

    def __post_init__(self) -> None:
        if self.kind not in PROBES:
            raise MMIBError(f"unknown probe '{self.kind}'; valid: {', '.join(PROBES)}")
        if self.class_weight not in ("none", "balanced"):
            raise MMIBError(f"probe option class_weight must be none or balanced, got {self.class_weight!r}")
        for k in ("max_epochs", "patience", "batch_size", "hidden"):
            if int(getattr(self, k)) < 1:
                raise MMIBError(f"probe option {k} must be >= 1, got {getattr(self, k)}")
        if self.lr is None:
            self.lr = 1e-2 if self.kind == "linear" else 1e-3
        if not self.lr > 0:
            raise MMIBError(f"probe option lr must be > 0, got {self.lr}")

    @classmethod
    def from_options(cls, kind: str, options: dict | None = None, seed: int = 0) -> ProbeConfig:
        """A config from a protocol's options (unknown keys are an error naming the valid ones)."""
        opts = dict(options or {})
        valid = [f for f in cls.__dataclass_fields__ if f not in ("kind",)]
        unknown = [k for k in opts if k not in valid]
        if unknown:
            from mmib.errors import UnknownNameError

            raise UnknownNameError("probe option", unknown[0], valid)
        opts.setdefault("seed", seed)
        return cls(kind=kind, **opts)


@dataclass
class ProbeResult:
    """Test metrics of a probe, the constant predictor's metrics (chance), and training facts."""

    metrics: dict[str, float]
    chance: dict[str, float]
    probe: str
    description: str
    epochs: int
    best_val_loss: float
    n_train: int
    n_val: int
    n_test: int
    dim: int
    predictions: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("predictions")
        return d


def _check(x: np.ndarray | None, name: str, n: int | None = None) -> np.ndarray:
    if x is None:
        raise MMIBError(f"probe: {name} features are missing")
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise MMIBError(f"probe: {name} features must be 2-D (N, d), got shape {x.shape}")
    if len(x) == 0:
        raise MMIBError(f"probe: the {name} split is empty")
    if not np.isfinite(x).all():
        row = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise MMIBError(f"probe: {name} features hold NaN or inf (row {row})")
    if n is not None and len(x) != n:
        raise MMIBError(f"probe: {name} has {len(x)} feature rows but {n} targets")
    return x


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily run torch with ``n`` intra-op threads."""
    if n is None or n == torch.get_num_threads():
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def fit_probe(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray | None, y_val: np.ndarray | None,
    x_test: np.ndarray, y_test: np.ndarray, task: str = "classification", n_classes: int | None = None,
    config: ProbeConfig | None = None,
) -> ProbeResult:
    """Train a probe on frozen features (train split), early-stop on val, and evaluate on test.

    Classification: accuracy, balanced accuracy, macro-F1; regression: MSE, MAE, R². ``x_val=None`` trains for
    ``max_epochs`` without early stopping.
    """
    cfg = config or ProbeConfig()
    with torch_threads(cfg.threads):
        return _fit_probe(x_train, y_train, x_val, y_val, x_test, y_test, task, n_classes, cfg)


def _fit_probe(x_train, y_train, x_val, y_val, x_test, y_test, task, n_classes, cfg: ProbeConfig) -> ProbeResult:
    if task not in TASKS:
        raise MMIBError(f"probe: task must be classification or regression, got {task!r}")
    if y_train is None or y_test is None:
        raise MMIBError("probe: targets are missing (does the data set have labels?)")
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    xtr, xte = _check(x_train, "train", len(y_train)), _check(x_test, "test", len(y_test))
    has_val = x_val is not None and len(x_val) > 0
    xva = _check(x_val, "val", len(y_val) if y_val is not None else None) if has_val else None
    if xte.shape[1] != xtr.shape[1] or (xva is not None and xva.shape[1] != xtr.shape[1]):
        raise MMIBError(f"probe: feature dimensions differ between splits (train {xtr.shape[1]}, test {xte.shape[1]})")
    mean, std = xtr.mean(0), xtr.std(0)
    std[std < 1e-8] = 1.0

    def norm(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy((a - mean) / std)

    d = xtr.shape[1]
    if task == "classification":
        if y_train.ndim != 1 or not np.issubdtype(y_train.dtype, np.integer):
            raise MMIBError(f"probe: classification targets must be 1-D integer class indices, got "
                            f"{y_train.dtype} of shape {y_train.shape}")
        k = int(max(np.max(y_train), np.max(y_test), np.max(y_val) if has_val else 0)) + 1
        n_classes = int(n_classes or k)
        if k > n_classes or np.min(y_train) < 0:
            raise MMIBError(f"probe: class labels must lie in 0..{n_classes - 1}, got labels up to {k - 1}")
        out_dim = n_classes
        weight = None
        if cfg.class_weight == "balanced":
            counts = np.bincount(y_train, minlength=n_classes).astype(np.float64)
            present = counts > 0  # a class absent from train gets no weight (it cannot be learned)
            w = np.zeros(n_classes)
            w[present] = len(y_train) / (present.sum() * counts[present])
            weight = torch.as_tensor(w, dtype=torch.float32)
        loss_fn: nn.Module = nn.CrossEntropyLoss(weight=weight)

        def to_t(y: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.asarray(y), dtype=torch.long)

        y_mean = y_std = None
    else:
        out_dim = int(y_train.reshape(len(y_train), -1).shape[1])
        loss_fn = nn.MSELoss()
        yt = y_train.reshape(len(y_train), -1).astype(np.float32)
        y_mean, y_std = torch.from_numpy(yt.mean(0)), torch.from_numpy(np.maximum(yt.std(0), 1e-8))

        def to_t(y: np.ndarray) -> torch.Tensor:
            t = torch.as_tensor(np.asarray(y), dtype=torch.float32).reshape(len(y), -1)
            return (t - y_mean) / y_std

    g = torch.Generator().manual_seed(int(cfg.seed))
    with torch.random.fork_rng():
        torch.manual_seed(int(cfg.seed))
        model = nn.Linear(d, out_dim) if cfg.kind == "linear" else MLP(d, out_dim, [cfg.hidden] * 3)
    Xtr, Ytr = norm(xtr), to_t(y_train)
    Xva, Yva = (norm(xva), to_t(y_val)) if xva is not None else (None, None)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(Xtr)
    bs = min(int(cfg.batch_size), n)
    best, best_state, bad, epoch = float("inf"), None, 0, 0
    for epoch in range(1, cfg.max_epochs + 1):
        model.train()
        perm = torch.randperm(n, generator=g) if bs < n else None
        for start in range(0, n, bs):
            idx = perm[start : start + bs] if perm is not None else slice(None)
            opt.zero_grad()
            loss = loss_fn(model(Xtr[idx]), Ytr[idx])
            if not torch.isfinite(loss):
                raise MMIBError(f"probe ({cfg.kind}): the training loss became {float(loss)} at epoch {epoch}; "
                                "lower the probe's lr")
            loss.backward()
            opt.step()
        if Xva is None:
            continue
        model.eval()
        with torch.no_grad():
            vl = float(loss_fn(model(Xva), Yva))
        if vl < best - 1e-6:
            best, bad = vl, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            bad += 1
            if bad >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        out = model(norm(xte))
    if task == "classification":
        pred = out.argmax(1).numpy()
        metrics = classification_metrics(y_test, pred)
        chance = classification_chance(y_train, y_test)
    else:
        pred = (out * y_std + y_mean).numpy()
        metrics = regression_metrics(y_test.astype(np.float32), pred)
        chance = regression_chance(y_train, y_test)
    description = PROBE_DESCRIPTIONS[task][cfg.kind]
    if task == "classification" and cfg.class_weight == "balanced":
        description = description.replace("(cross-entropy)", "(class-balanced cross-entropy)")
    return ProbeResult(metrics=metrics, chance=chance, probe=cfg.kind, description=description,
                       epochs=epoch, best_val_loss=best if Xva is not None else float("nan"), n_train=len(xtr),
                       n_val=0 if xva is None else len(xva), n_test=len(xte), dim=d, predictions=pred)


def train_probe(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray | None, y_val: np.ndarray | None,
    x_test: np.ndarray, y_test: np.ndarray, task: str = "classification", n_classes: int | None = None,
    config: ProbeConfig | None = None,
) -> dict[str, float]:
    """:func:`fit_probe`, returning only the test metrics plus ``val_loss`` and ``epochs`` (numbers only)."""
    r = fit_probe(x_train, y_train, x_val, y_val, x_test, y_test, task, n_classes, config)
    return {**r.metrics, "val_loss": r.best_val_loss, "epochs": r.epochs}
