"""What a probe is: the probe kinds and their descriptions, :class:`ProbeConfig` (options), :class:`ProbeResult`,
the feature checks and the thread setting the fitting functions share."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from mmib.errors import MMIBError

PROBES = ("linear", "mlp")
TASKS = ("classification", "regression")

#: what each probe is, for tables and reports (task → probe → description)
PROBE_DESCRIPTIONS = {
    "classification": {"linear": "linear softmax regression (cross-entropy)",
                       "mlp": "4-layer MLP (cross-entropy)"},
    "regression": {"linear": "linear regression (least squares)", "mlp": "4-layer MLP (MSE)"},
}


#: the default epoch limit of a linear probe trained on the whole train split at once (:meth:`ProbeConfig.schedule`):
#: 300, the general default. 100 (and before it 150, issue 24) stopped linear probes on raw sim_align features short
#: of convergence: up to 19 points below on a run of the alignment suite (docs/results/speed.md, 2026-12-08); restored
FULL_BATCH_LINEAR_MAX_EPOCHS = 300
#: the default patience of a linear probe trained on the whole train split at once (:meth:`ProbeConfig.schedule`):
#: 20, the general default (15 in the same shortcut, restored with it)
FULL_BATCH_LINEAR_PATIENCE = 20
#: the default patience of an MLP probe trained on the whole train split at once (:meth:`ProbeConfig.schedule`)
FULL_BATCH_MLP_PATIENCE = 5


@dataclass
class ProbeConfig:
    """Settings of a probe.

    Attributes:
        kind: ``linear`` or ``mlp`` (4 layers: 3 hidden of ``hidden`` units).
        lr, weight_decay: Adam settings (lr default: 1e-2 linear, 1e-3 MLP).
        max_epochs: passes over the train split; patience: epochs without a better validation loss before stopping.
            Defaults (None; :meth:`schedule`): 300 and 20, except when the whole train split is one batch
            (``n <= batch_size``) and a validation split stops the training: then an MLP probe stops after
            ``FULL_BATCH_MLP_PATIENCE`` (5) epochs without a better validation loss (a linear probe keeps 300 / 20:
            ``FULL_BATCH_LINEAR_MAX_EPOCHS``, ``FULL_BATCH_LINEAR_PATIENCE``).
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
    max_epochs: int | None = None
    patience: int | None = None
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
            if getattr(self, k) is not None and int(getattr(self, k)) < 1:
                raise MMIBError(f"probe option {k} must be >= 1, got {getattr(self, k)}")
        if self.lr is None:
            self.lr = 1e-2 if self.kind == "linear" else 1e-3
        if not self.lr > 0:
            raise MMIBError(f"probe option lr must be > 0, got {self.lr}")

    def schedule(self, n_train: int, validation: bool = True) -> tuple[int, int]:
        """``(max_epochs, patience)`` for a train split of ``n_train`` rows (``validation``: whether a validation
        split early-stops the training): the values set, else the defaults.

        The defaults are 300 epochs and a patience of 20, with exceptions for full-batch training with early
        stopping (``n_train <= batch_size``: one deterministic Adam step per epoch), measured on 2-epoch ova_ib runs
        of the 6-view digits (5 seeds; ``docs/results/speed.md``): an MLP probe stops after 5 epochs without a better
        validation loss (the same best epoch, so the same probe, in all 10 MLP probes against a patience of 20). A
        shorter linear rule (100 epochs, patience 15; before it 150 / 20) was within the seed spread on the digits but
        stopped linear probes on raw sim_align features short of convergence (up to 19 points below 300 / 20 on a
        run of the alignment suite), so linear probes keep the general 300 / 20
        (``tests/eval/probe/test_config.py`` checks the default against a long schedule on sim_align)."""
        full = int(n_train) <= int(self.batch_size) and validation
        max_epochs = self.max_epochs if self.max_epochs is not None else (
            FULL_BATCH_LINEAR_MAX_EPOCHS if full and self.kind == "linear" else 300)
        patience = self.patience if self.patience is not None else (
            (FULL_BATCH_MLP_PATIENCE if self.kind == "mlp" else FULL_BATCH_LINEAR_PATIENCE) if full else 20)
        return int(max_epochs), int(patience)

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




def seeded_module(build: Callable[[], nn.Module], seed: int) -> nn.Module:
    """``build()`` with the parameters ``torch.manual_seed(seed); build()`` gives (bit for bit), drawn from a
    :class:`torch.Generator` of its own: the global generator is neither read nor changed, so probes initialized in
    threads side by side (``evaluate(jobs=...)``) get the same weights in any order. ``build`` may hold
    :class:`~torch.nn.Linear` layers and parameter-free modules (activations, dropout)."""
    with torch.device("meta"):  # a thread's own setting: nothing is drawn, nothing is allocated
        model = build()
    model = model.to_empty(device="cpu")
    g = torch.Generator().manual_seed(int(seed))
    for m in model.modules():  # in construction order, as nn.Linear.reset_parameters draws them
        if isinstance(m, nn.Linear):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=g)
            if m.bias is not None:
                fan_in = m.weight.shape[1]
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                nn.init.uniform_(m.bias, -bound, bound, generator=g)
        elif any(True for _ in m.parameters(recurse=False)) or any(True for _ in m.buffers(recurse=False)):
            raise MMIBError(f"seeded_module: cannot initialize a {type(m).__name__} (only nn.Linear has parameters)")
    return model
