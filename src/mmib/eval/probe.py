"""Downstream probes on frozen representations.

* ``linear``: softmax (multinomial logistic) regression trained with cross-entropy — or least squares for
  regression — the probe whose number the synergy claims depend on (FactorCL/CoMM spec D.3.1);
* ``mlp``: the papers' 4-layer MLP predictor.

Both are trained full-batch with Adam on standardized features (statistics from the train split), with early
stopping on the validation loss and a fixed seed; metrics are computed on the test split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score, mean_absolute_error, mean_squared_error
from torch import nn

from mmib.errors import MMIBError
from mmib.nn.heads import MLP

PROBES = ("linear", "mlp")


@dataclass
class ProbeConfig:
    kind: str = "linear"
    lr: float = 1e-2
    weight_decay: float = 1e-4
    max_epochs: int = 500
    patience: int = 30
    hidden: int = 256
    seed: int = 0


def _check(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise MMIBError(f"probe: {name} features must be 2-D (N, d), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise MMIBError(f"probe: {name} features hold NaN or inf")
    return x


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, average="macro")),
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    y_true = y_true.reshape(len(y_true), -1)
    y_pred = y_pred.reshape(len(y_pred), -1)
    var = y_true.var(axis=0).sum()
    mse = float(mean_squared_error(y_true, y_pred))
    return {"mse": mse, "mae": float(mean_absolute_error(y_true, y_pred)),
            "r2": float(1 - ((y_true - y_pred) ** 2).mean(0).sum() / var) if var > 0 else float("nan")}


def train_probe(
    x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray | None, y_val: np.ndarray | None,
    x_test: np.ndarray, y_test: np.ndarray, task: str = "classification", n_classes: int | None = None,
    config: ProbeConfig | None = None,
) -> dict[str, float]:
    """Train a probe on frozen features and return test metrics (+ ``val_loss``, ``epochs``).

    Classification: accuracy, balanced accuracy, macro-F1. Regression: MSE, MAE, R².
    """
    cfg = config or ProbeConfig()
    if cfg.kind not in PROBES:
        raise MMIBError(f"unknown probe '{cfg.kind}'; valid: {', '.join(PROBES)}")
    if task not in ("classification", "regression"):
        raise MMIBError(f"probe: task must be classification or regression, got {task!r}")
    xtr, xte = _check(x_train, "train"), _check(x_test, "test")
    xva = _check(x_val, "val") if x_val is not None and len(x_val) else None
    mean, std = xtr.mean(0), xtr.std(0)
    std[std < 1e-8] = 1.0
    norm = lambda a: torch.from_numpy((a - mean) / std)  # noqa: E731
    g = torch.Generator().manual_seed(cfg.seed)
    d = xtr.shape[1]
    if task == "classification":
        n_classes = int(n_classes or (int(np.max(y_train)) + 1))
        out_dim = n_classes
        loss_fn: nn.Module = nn.CrossEntropyLoss()
        to_t = lambda y: torch.as_tensor(np.asarray(y), dtype=torch.long)  # noqa: E731
    else:
        out_dim = int(np.asarray(y_train).reshape(len(y_train), -1).shape[1])
        loss_fn = nn.MSELoss()
        to_t = lambda y: torch.as_tensor(np.asarray(y), dtype=torch.float32).reshape(len(y), -1)  # noqa: E731
    with torch.random.fork_rng():
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=g)))
        model = nn.Linear(d, out_dim) if cfg.kind == "linear" else MLP(d, out_dim, [cfg.hidden] * 3)
    ytr_t = to_t(y_train)
    if task == "regression":
        y_mean, y_std = ytr_t.mean(0), ytr_t.std(0).clamp_min(1e-8)
    else:
        y_mean, y_std = None, None
    scale_y = (lambda t: (t - y_mean) / y_std) if task == "regression" else (lambda t: t)
    Xtr = norm(xtr)
    Xva, Yva = (norm(xva), scale_y(to_t(y_val))) if xva is not None else (None, None)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    best, best_state, bad, epoch = float("inf"), None, 0, 0
    Ytr = scale_y(ytr_t)
    for epoch in range(1, cfg.max_epochs + 1):
        model.train()
        opt.zero_grad()
        loss = loss_fn(model(Xtr), Ytr)
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
        metrics = classification_metrics(np.asarray(y_test), out.argmax(1).numpy())
    else:
        pred = (out * y_std + y_mean).numpy()
        metrics = regression_metrics(np.asarray(y_test, dtype=np.float32), pred)
    metrics.update({"val_loss": best if Xva is not None else float("nan"), "epochs": epoch})
    return metrics
