"""WESAD (Schmidt et al., ICMI 2018): chest (RespiBAN, 700 Hz) and wrist (Empatica E4) signals, affect labels.

Files: ``WESAD/SX/SX.pkl`` (X = 2..17 without 1 and 12), Python-2 pickles read with ``encoding="latin1"``: a dict with
``subject``, ``label`` (700 Hz: 0 transient, 1 baseline, 2 stress, 3 amusement, 4 meditation, 5-7 ignore) and
``signal`` → ``chest`` {``ACC`` (N, 3), ``ECG``, ``EMG``, ``EDA``, ``Temp``, ``Resp`` (N, 1)} at 700 Hz and ``wrist``
{``ACC`` (32 Hz, (M, 3)), ``BVP`` (64 Hz), ``EDA`` (4 Hz), ``TEMP`` (4 Hz)}.

Windows of ``window_s`` seconds (5 s: chest 3500 samples, BVP 320) start every ``step_s`` seconds on the 700 Hz
clock; the wrist window starts at the same time (``round(start / 700 * rate)``). A window is kept when *all* its
700 Hz labels equal one of ``labels`` (default baseline, stress, amusement → classes 0, 1, 2). ``groups`` are the
subject numbers, so the data module's default split is subject-wise.

Tasks: ``affect`` (3-class classification), ``retrieval`` (OVA-IB: Resp + ECG → BVP; unlabelled, task ``none``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mmib.data.dataset import DataValidationError, MultimodalDataset
from mmib.data.loaders._common import (
    build_dataset_from_file,
    check_array,
    check_choice,
    fail,
    get_key,
    load_pickle,
    pick_modalities,
    resolve_path,
)
from mmib.data.registry import register_dataset
from mmib.data.spec import DatasetSpec, ModalitySpec

CHEST_RATE = 700.0
#: modality name → (device, key in the pickle, sampling rate in Hz, channels)
WESAD_MODALITIES = {
    "resp": ("chest", "Resp", 700.0, 1),
    "ecg": ("chest", "ECG", 700.0, 1),
    "emg": ("chest", "EMG", 700.0, 1),
    "chest_eda": ("chest", "EDA", 700.0, 1),
    "chest_temp": ("chest", "Temp", 700.0, 1),
    "chest_acc": ("chest", "ACC", 700.0, 3),
    "bvp": ("wrist", "BVP", 64.0, 1),
    "wrist_acc": ("wrist", "ACC", 32.0, 3),
    "wrist_eda": ("wrist", "EDA", 4.0, 1),
    "wrist_temp": ("wrist", "TEMP", 4.0, 1),
}
WESAD_LABEL_NAMES = {1: "baseline", 2: "stress", 3: "amusement", 4: "meditation"}
WESAD_TASKS = ("affect", "retrieval")


def _subject_files(folder: Path, subjects: Sequence[int | str] | None) -> list[tuple[int, Path]]:
    if subjects is None:
        found = []
        for d in sorted(folder.iterdir()):
            m = re.fullmatch(r"S(\d+)", d.name)
            if m and (d / f"{d.name}.pkl").is_file():
                found.append((int(m.group(1)), d / f"{d.name}.pkl"))
        if not found:
            raise DataValidationError(f"{folder}: no subject files (expected SX/SX.pkl, e.g. S2/S2.pkl)")
        return sorted(found)
    out = []
    for s in subjects:
        num = int(str(s).lstrip("Ss"))
        file = folder / f"S{num}" / f"S{num}.pkl"
        if not file.is_file():
            raise DataValidationError(f"{folder}: subject S{num} requested but {file} does not exist")
        out.append((num, file))
    return out


def _windows(labels: np.ndarray, win: int, step: int, keep: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Start indices (700 Hz) of the windows whose labels are all one of ``keep``, and that label."""
    n = labels.shape[0]
    starts = np.arange(0, n - win + 1, step)
    if len(starts) == 0:
        return starts, starts
    # a window is pure when its label is constant: compare prefix counts of label changes
    change = np.r_[0, np.cumsum(labels[1:] != labels[:-1])]
    pure = change[starts + win - 1] == change[starts]
    lab = labels[starts]
    ok = pure & np.isin(lab, np.asarray(keep))
    return starts[ok], lab[ok]


@register_dataset("wesad", description="WESAD chest + wrist signals: 3-class affect, Resp+ECG->BVP retrieval")
def load_wesad(
    path: str | None = None,
    task: str = "affect",
    modalities: Sequence[str] | None = None,
    window_s: float = 5.0,
    step_s: float | None = None,
    labels: Sequence[int] = (1, 2, 3),
    subjects: Sequence[int | str] | None = None,
    trust_pickle: bool = False,
) -> MultimodalDataset:
    """WESAD windows from the ``WESAD`` folder (default ``$MMIB_DATA/WESAD`` or ``$MMIB_DATA/wesad``).

    ``modalities`` (default resp, ecg, bvp): any of resp, ecg, emg, chest_eda, chest_temp, chest_acc, bvp,
    wrist_acc, wrist_eda, wrist_temp. ``labels``: WESAD label codes kept, in class order. ``subjects``: subject
    numbers to read (default: every ``SX/SX.pkl`` found). ``trust_pickle``: unpickle without the restriction to numpy
    arrays and Python containers (unpickling can run code: only for files you trust).
    """
    check_choice("wesad: task", task, WESAD_TASKS)
    mods = pick_modalities("wesad", modalities if modalities is not None else ("resp", "ecg", "bvp"),
                           tuple(WESAD_MODALITIES))  # fmt: skip
    window_s = float(window_s)
    step_s = window_s if step_s is None else float(step_s)
    if window_s <= 0 or step_s <= 0:
        raise DataValidationError(f"wesad: window_s and step_s must be > 0, got {window_s}, {step_s}")
    keep = [int(v) for v in labels]
    if not keep or len(set(keep)) != len(keep) or any(v not in WESAD_LABEL_NAMES for v in keep):
        raise DataValidationError(f"wesad: labels must be distinct codes among 1..4 ({WESAD_LABEL_NAMES}), got {keep}")
    if task == "affect" and len(keep) < 2:
        raise DataValidationError("wesad: the affect task needs at least 2 label codes")
    folder = resolve_path(path, "wesad", ["WESAD", "wesad"], want="dir")
    win = int(round(window_s * CHEST_RATE))
    step = int(round(step_s * CHEST_RATE))
    lengths = {m: int(round(window_s * WESAD_MODALITIES[m][2])) for m in mods}

    xs: dict[str, list[np.ndarray]] = {m: [] for m in mods}
    ys, gs = [], []
    for num, file in _subject_files(folder, subjects):
        d = load_pickle(file, encoding="latin1", trust=trust_pickle)
        if not isinstance(d, dict):
            raise fail(file, "(root)", "a dict with keys subject, label, signal", type(d).__name__)
        lab = check_array(get_key(d, "label", file), file, "label", ndim=(1, 2)).reshape(-1)
        n = lab.shape[0]
        signal = get_key(d, "signal", file, expected="(dict with chest and wrist)")
        starts, wl = _windows(lab.astype(np.int64), win, step, keep)
        sigs = {}
        for m in mods:
            dev, key, rate, ch = WESAD_MODALITIES[m]
            group = get_key(signal, dev, file, where="signal")
            a = check_array(get_key(group, key, file, where=f"signal/{dev}"), file, f"signal/{dev}/{key}",
                            ndim=(1, 2))  # fmt: skip
            a = a.reshape(a.shape[0], -1)
            if a.shape[1] != ch:
                raise fail(file, f"signal/{dev}/{key}", f"shape (N, {ch})", f"shape {a.shape}")
            if dev == "chest" and a.shape[0] != n:
                raise fail(file, f"signal/{dev}/{key}", f"{n} samples (one per 700 Hz label)", f"{a.shape[0]}")
            sigs[m] = a
        # wrist windows must fit in the wrist recordings
        ok = np.ones(len(starts), dtype=bool)
        for m in mods:
            rate = WESAD_MODALITIES[m][2]
            ws = np.round(starts / CHEST_RATE * rate).astype(np.int64)
            ok &= ws + lengths[m] <= sigs[m].shape[0]
        starts, wl = starts[ok], wl[ok]
        for m in mods:
            rate = WESAD_MODALITIES[m][2]
            ws = np.round(starts / CHEST_RATE * rate).astype(np.int64)
            idx = ws[:, None] + np.arange(lengths[m])[None, :]
            xs[m].append(sigs[m][idx].transpose(0, 2, 1).astype(np.float32))  # (W, C, L)
        code_to_class = np.full(max(WESAD_LABEL_NAMES) + 1, -1, dtype=np.int64)
        code_to_class[keep] = np.arange(len(keep))
        ys.append(code_to_class[wl])
        gs.append(np.full(len(starts), num, dtype=np.int64))
    y = np.concatenate(ys)
    if len(y) == 0:
        raise DataValidationError(
            f"{folder}: no {window_s} s window has a constant label among {keep}; check the files or the options"
        )
    x = {m: np.concatenate(xs[m]) for m in mods}
    spec = DatasetSpec(
        name="wesad",
        modalities=tuple(
            ModalitySpec(m, "signal", (WESAD_MODALITIES[m][3], lengths[m]), rate=WESAD_MODALITIES[m][2]) for m in mods
        ),
        task="classification" if task == "affect" else "none",
        n_classes=len(keep) if task == "affect" else None,
        description=(f"WESAD {window_s} s windows, classes "
                     f"{', '.join(WESAD_LABEL_NAMES[k] for k in keep)}; groups = subjects"),  # fmt: skip
    )
    return build_dataset_from_file(folder, spec, x=x, y=y if task == "affect" else None, groups=np.concatenate(gs))
