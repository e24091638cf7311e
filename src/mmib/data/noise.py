"""Training-label noise: symmetric class flips on the train split only (``data.train_label_noise``).

Each training label is replaced, with probability ``rate``, by a class drawn uniformly among the *other* classes
(never the same class). Validation and test labels are untouched. The draw is seeded by the data module's seed (the
run seed, which also fixes the split) through a stream of its own, so the split does not change with the rate and a
run reloaded from its folder (``mmib eval``) sees the same flips.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

from mmib.data.spec import DatasetSpec, DataValidationError

#: mixed with the seed so that the flips do not reuse the split's random stream
_STREAM = 0x1ABE1


def check_train_label_noise(rate: object, spec: DatasetSpec, has_labels: bool) -> float:
    """``rate`` as a float in [0, 1), or a :class:`DataValidationError` naming ``data.train_label_noise``."""
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not (0.0 <= float(rate) < 1.0):
        raise DataValidationError(f"data.train_label_noise: expected a probability in [0, 1), got {rate!r}")
    rate = float(rate)
    if rate > 0 and (spec.task != "classification" or not has_labels):
        what = "has no labels y" if not has_labels else f"is a {spec.task} task"
        raise DataValidationError(f"data.train_label_noise = {rate}: needs a class label, but data set "
                                  f"'{spec.name}' {what} (label noise flips classes of a classification task)")
    return rate


def flip_labels(y: torch.Tensor, indices: np.ndarray, rate: float, n_classes: int, seed: int
                ) -> tuple[torch.Tensor, np.ndarray]:
    """A copy of ``y`` with each of ``y[indices]`` replaced, with probability ``rate``, by a uniformly drawn other
    class; and the indices that were flipped. ``y`` itself is not modified."""
    out = y.clone()
    rng = np.random.default_rng([int(seed), _STREAM])
    indices = np.asarray(indices, dtype=np.int64)
    hit = rng.random(len(indices)) < rate
    shift = rng.integers(1, n_classes, size=len(indices))  # 1..K-1: never the same class
    flipped = indices[hit]
    if len(flipped):
        old = out[torch.from_numpy(flipped)]
        out[torch.from_numpy(flipped)] = (old + torch.from_numpy(shift[hit])) % n_classes
    return out, flipped
