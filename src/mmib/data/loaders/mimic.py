"""MIMIC-III as preprocessed by MultiBench (``im.pk``; credentialed access through PhysioNet).

``pickle.load`` gives a dict with ``ep_tdata`` (N, 24, 12) hourly time series, ``adm_features_all`` (N, 5) static
admission features, ``adm_labels_all`` (N, >= 6) mortality indicators and ``y_icd9`` (N, 20) ICD-9 group labels.

As MultiBench ``datasets/mimic/get_data.py``: inf / NaN → 0; task ``mortality`` = 6 classes (the first of columns
1..5 of ``adm_labels_all`` that is positive, else 0); task ``icd9_K`` (K = 0..19) = binary ``y_icd9[:, K]`` (the
papers use K = 7, ICD 70-79, and K = 1, ICD 10-19). The split reproduces MultiBench's exactly:
``random.Random(split_seed).shuffle`` of the sample order (MultiBench: ``random.seed(10); random.shuffle``), then
val = [:N//10], test = [N//10:N//5], train = [N//5:]. MultiBench z-scores with statistics over *all* samples; here
the values stay raw and the data module fits the per-feature standardization on the train split.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from mmib.data.dataset import DataValidationError, MultimodalDataset
from mmib.data.loaders._common import (
    build_dataset_from_file,
    check_array,
    fail,
    get_key,
    load_pickle,
    pick_modalities,
    resolve_path,
)
from mmib.data.registry import register_dataset
from mmib.data.spec import DatasetSpec, ModalitySpec

MIMIC_MODALITIES = ("static", "timeseries")


def mimic_split(n: int, seed: int = 10) -> np.ndarray:
    """MultiBench's MIMIC split: a Python ``random`` shuffle with ``seed``; val [:n//10], test [n//10:n//5]."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    split = np.full(n, "train", dtype="<U5")
    order = np.asarray(order, dtype=np.int64)
    split[order[: n // 10]] = "val"
    split[order[n // 10 : n // 5]] = "test"
    return split


def _parse_task(task: str | int) -> int:
    """-1 for mortality, else the ICD-9 column."""
    if task in ("mortality", -1, "-1"):
        return -1
    s = str(task)
    if s.startswith("icd9_"):
        s = s[len("icd9_") :]
    if s.isdigit() and 0 <= int(s) < 20:
        return int(s)
    raise DataValidationError(f"mimic: task must be 'mortality' or 'icd9_K' with K in 0..19 (e.g. icd9_7), got {task!r}")


@register_dataset("mimic", description="MIMIC-III (MultiBench im.pk): static + 24 h time series; mortality / ICD-9")
def load_mimic(
    path: str | None = None,
    task: str = "mortality",
    modalities: Sequence[str] | None = None,
    split_seed: int = 10,
    trust_pickle: bool = False,
) -> MultimodalDataset:
    """MIMIC from ``im.pk`` (default ``$MMIB_DATA/im.pk`` or ``$MMIB_DATA/mimic/im.pk``).

    ``trust_pickle``: unpickle without the restriction to numpy arrays and Python containers (unpickling can run
    code: only for files you trust).
    """
    col = _parse_task(task)
    mods = pick_modalities("mimic", modalities, MIMIC_MODALITIES)
    file = resolve_path(path, "mimic", ["im.pk"])
    d = load_pickle(file, trust=trust_pickle)
    if not isinstance(d, dict):
        raise fail(file, "(root)", "a dict with keys ep_tdata, adm_features_all, adm_labels_all, y_icd9",
                   type(d).__name__)  # fmt: skip
    ts = check_array(get_key(d, "ep_tdata", file), file, "ep_tdata", shape=(None, None, None)).astype(np.float32)
    n = ts.shape[0]
    st = check_array(get_key(d, "adm_features_all", file), file, "adm_features_all", shape=(n, None)).astype(np.float32)
    for a in (ts, st):
        a[~np.isfinite(a)] = 0.0
    if col < 0:
        lab = check_array(get_key(d, "adm_labels_all", file), file, "adm_labels_all", shape=(n, None))
        if lab.shape[1] < 6:
            raise fail(file, "adm_labels_all", f"shape ({n}, >= 6)", f"shape {lab.shape}")
        pos = lab[:, 1:6] > 0
        y = np.where(pos.any(axis=1), pos.argmax(axis=1) + 1, 0).astype(np.int64)
        n_classes = 6
    else:
        lab = check_array(get_key(d, "y_icd9", file), file, "y_icd9", shape=(n, None))
        if lab.shape[1] <= col:
            raise fail(file, "y_icd9", f"shape ({n}, 20) (column {col} for this task)", f"shape {lab.shape}")
        y = (lab[:, col] > 0).astype(np.int64)
        n_classes = 2
    x = {"static": st, "timeseries": ts}
    spec = DatasetSpec(
        name="mimic",
        modalities=tuple(
            ModalitySpec(m, "vector" if m == "static" else "sequence", x[m].shape[1:]) for m in mods
        ),
        task="classification",
        n_classes=n_classes,
        description=f"MIMIC-III (MultiBench im.pk), task {'mortality (6 classes)' if col < 0 else f'icd9_{col}'}",
    )
    return build_dataset_from_file(file, spec, x={m: x[m] for m in mods}, y=y, split=mimic_split(n, split_seed))
