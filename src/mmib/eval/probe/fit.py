"""One probe on frozen features: :func:`fit_probe` (train on train, early-stop on val, score on test) and
:func:`train_probe` (its numbers only)."""

from __future__ import annotations

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
from mmib.eval.probe.config import (
    PROBE_DESCRIPTIONS,
    TASKS,
    ProbeConfig,
    ProbeResult,
    _check,
    seeded_module,
    torch_threads,
)
from mmib.nn.heads import MLP


def fit_probe(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray | None, y_val: np.ndarray | None,
    x_test: np.ndarray, y_test: np.ndarray, task: str = "classification", n_classes: int | None = None,
    config: ProbeConfig | None = None,
) -> ProbeResult:
    """Train a probe on frozen features (train split), early-stop on val, and evaluate on test.

    Classification: accuracy, balanced accuracy, macro-F1; regression: MSE, MAE, R². ``x_val=None`` trains for
    ``max_epochs`` without early stopping (:meth:`ProbeConfig.schedule`: the epochs and patience used).
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
    model = seeded_module(lambda: nn.Linear(d, out_dim) if cfg.kind == "linear" else MLP(d, out_dim, [cfg.hidden] * 3),
                          cfg.seed)  # what torch.manual_seed(seed) gives, without the global generator
    Xtr, Ytr = norm(xtr), to_t(y_train)
    Xva, Yva = (norm(xva), to_t(y_val)) if xva is not None else (None, None)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    n = len(Xtr)
    bs = min(int(cfg.batch_size), n)
    max_epochs, patience = cfg.schedule(n, Xva is not None)
    best, best_state, bad, epoch = float("inf"), None, 0, 0
    for epoch in range(1, max_epochs + 1):
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
            if bad >= patience:
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


