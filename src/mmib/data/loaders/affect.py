"""MultiBench affect pickles: CMU-MOSI, CMU-MOSEI, UR-FUNNY ("humor") and MUStARD ("sarcasm").

File layout (MultiBench ``datasets/affect/get_data.py``): ``pickle.load`` gives a dict with ``train``, ``valid`` and
``test``; each is a dict of numpy arrays ``vision`` (N, T, d_v), ``audio`` (N, T, d_a), ``text`` (N, T, 300, GloVe,
front-padded with zeros), ``labels`` (N, 1, 1), (N, 1) or (N,) and optionally ``id``.

Conventions reproduced from MultiBench:

* samples whose text is all zeros are dropped (``drop_entry``);
* ``audio == -inf`` is set to 0;
* ``alignment="text"`` (MultiBench ``aligned=True``): every modality starts at the first non-zero text step;
  ``alignment="per_modality"`` (``aligned=False``): each modality starts at its own first non-zero step; the trimmed
  sequences are moved to the front and zero-padded at the end, and ``lengths`` holds the valid length per sample
  (MultiBench's ``pad_sequence`` batches hold the same values). ``alignment="none"`` keeps the front-padded arrays.
  A modality that is all zeros under ``per_modality`` is marked missing in the presence mask.
* fixed splits from the file: ``train`` / ``valid`` → ``val`` / ``test``.

Safety: the pickle is read with a restricted unpickler that builds only numpy arrays and Python containers (what
MultiBench's files hold); ``trust_pickle=True`` (``data.trust_pickle=true``) lifts the restriction for a file you
trust (unpickling can run code).

Labels: MOSI / MOSEI sentiment in [-3, 3] (the first value per sample when a file holds several, as MultiBench's
``process_1`` does); ``label_mode`` = ``binary`` (label > 0, MultiBench and OVA-IB), ``binary_ge0`` (label >= 0),
``binary_nonzero`` (samples with label 0 dropped, then > 0: the "Acc-2 non-0" convention), ``7class``
(round(clip(label, -3, 3)) + 3) or ``regression``. UR-FUNNY / MUStARD: ``binary`` = label > 0 (humor 0/1, sarcasm 0/1
or -1/1 both map to {0, 1}; MultiBench's classification convention; CoMM uses the same loaders).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

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

AFFECT_MODALITIES = ("vision", "audio", "text")
AFFECT_SPLITS = (("train", "train"), ("valid", "val"), ("test", "test"))
ALIGNMENTS = ("text", "per_modality", "none")
SENTIMENT_LABEL_MODES = ("binary", "binary_ge0", "binary_nonzero", "7class", "regression")

#: data set → {variant: file name}
AFFECT_FILES = {
    "mosi": {"aligned": "mosi_data.pkl", "raw": "mosi_raw.pkl"},
    "mosei": {"aligned": "mosei_senti_data.pkl", "raw": "mosei_raw.pkl"},
    "urfunny": {"aligned": "humor.pkl"},
    "mustard": {"aligned": "sarcasm.pkl"},
}


def _first_nonzero_step(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per sample: index of the first time step with any non-zero value, and whether there is one."""
    nz = np.any(a != 0, axis=2)  # (N, T)
    has = nz.any(axis=1)
    return np.where(has, nz.argmax(axis=1), a.shape[1] - 1), has


def _left_align(a: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Move ``a[i, start[i]:]`` to the front of each row and zero-pad the end."""
    n, t = a.shape[:2]
    idx = np.arange(t)[None, :] + start[:, None]
    valid = idx < t
    out = np.take_along_axis(a, np.minimum(idx, t - 1)[:, :, None], axis=1)
    out[~valid] = 0
    return out


def _read_split(data: dict, split: str, file: Path, mods: Sequence[str]) -> dict[str, np.ndarray]:
    part = get_key(data, split, file, expected="(a dict of arrays per split: train, valid, test)")
    out = {}
    for key in (*mods, "labels"):
        a = get_key(part, key, file, where=split, expected="(N, T, d) array" if key != "labels" else "labels")
        if key == "labels":
            a = check_array(a, file, f"{split}/labels", ndim=(1, 2, 3))
            a = a.reshape(a.shape[0], -1)
        else:
            a = check_array(a, file, f"{split}/{key}", shape=(None, None, None))
        out[key] = a
    n = {k: v.shape[0] for k, v in out.items()}
    if len(set(n.values())) != 1:
        raise DataValidationError(
            f"{file}: split '{split}': arrays have different numbers of samples "
            f"({', '.join(f'{k}: {v}' for k, v in n.items())}); expected one entry per sample in each"
        )
    return out


def load_affect(
    name: str,
    path: str | os.PathLike | None = None,
    variant: str = "aligned",
    alignment: str = "text",
    label_mode: str = "binary",
    modalities: Sequence[str] | None = None,
    max_seq_len: int | None = None,
    trust_pickle: bool = False,
) -> MultimodalDataset:
    """Read a MultiBench affect pickle into a :class:`MultimodalDataset` with its fixed train/val/test split."""
    files = AFFECT_FILES[name]
    check_choice(f"{name}: variant", variant, tuple(files))
    check_choice(f"{name}: alignment", alignment, ALIGNMENTS)
    sentiment = name in ("mosi", "mosei")
    check_choice(f"{name}: label_mode", label_mode, SENTIMENT_LABEL_MODES if sentiment else ("binary",))
    mods = pick_modalities(name, modalities, AFFECT_MODALITIES)
    if max_seq_len is not None and int(max_seq_len) < 1:
        raise DataValidationError(f"{name}: max_seq_len must be >= 1 or None, got {max_seq_len}")
    file = resolve_path(path, name, [files[variant]])
    data = load_pickle(file, trust=trust_pickle)
    if not isinstance(data, dict):
        raise fail(file, "(root)", "a dict with keys train, valid, test", type(data).__name__)

    # every modality is read (text is needed for the alignment and for dropping empty samples)
    parts = {dst: _read_split(data, src, file, AFFECT_MODALITIES) for src, dst in AFFECT_SPLITS}
    for m in AFFECT_MODALITIES:
        shapes = {s: p[m].shape[1:] for s, p in parts.items()}
        if len(set(shapes.values())) != 1:
            raise fail(file, m, "the same (T, d) in train, valid and test",
                       ", ".join(f"{s}: {v}" for s, v in shapes.items()))  # fmt: skip
    t_steps = {m: parts["train"][m].shape[1] for m in AFFECT_MODALITIES}
    if alignment == "text" and len(set(t_steps.values())) != 1:
        raise fail(file, "vision/audio/text", "the same number of time steps T for alignment='text' "
                   "(word-aligned data)", ", ".join(f"{m}: {t}" for m, t in t_steps.items()))  # fmt: skip

    arrays: dict[str, list[np.ndarray]] = {m: [] for m in mods}
    lengths: dict[str, list[np.ndarray]] = {m: [] for m in mods}
    present: dict[str, list[np.ndarray]] = {m: [] for m in mods}
    labels, split = [], []
    for s, p in parts.items():
        keep = np.any(p["text"].reshape(p["text"].shape[0], -1) != 0, axis=1)  # MultiBench drop_entry
        lab = p["labels"][:, 0].astype(np.float64)
        if not np.all(np.isfinite(lab)):
            raise fail(file, f"{s if s != 'val' else 'valid'}/labels", "finite values", "NaN or inf")
        if label_mode == "binary_nonzero":
            keep &= lab != 0
        idx = np.flatnonzero(keep)
        text = p["text"][idx]
        text_start, _ = _first_nonzero_step(text)
        for m in mods:
            a = p[m][idx].astype(np.float32, copy=True)
            if m == "audio":
                a[a == -np.inf] = 0.0
            t = a.shape[1]
            if alignment == "none":
                start, has = np.zeros(len(idx), dtype=np.int64), np.ones(len(idx), dtype=bool)
            elif alignment == "text":
                start, has = text_start, np.ones(len(idx), dtype=bool)
            else:
                start, has = _first_nonzero_step(a)
            if alignment != "none":
                a = _left_align(a, start)
            ln = t - start
            if max_seq_len is not None and t > max_seq_len:
                a = a[:, :max_seq_len]
                ln = np.minimum(ln, max_seq_len)
            arrays[m].append(a)
            lengths[m].append(ln)
            present[m].append(has)
        labels.append(lab[idx])
        split.append(np.full(len(idx), s))
    lab = np.concatenate(labels)
    if sentiment:
        if label_mode == "regression":
            y: np.ndarray = lab.astype(np.float32)
        elif label_mode == "7class":
            y = (np.round(np.clip(lab, -3, 3)) + 3).astype(np.int64)
        elif label_mode == "binary_ge0":
            y = (lab >= 0).astype(np.int64)
        else:
            y = (lab > 0).astype(np.int64)
    else:
        y = (lab > 0).astype(np.int64)
    x = {m: np.concatenate(arrays[m]) for m in mods}
    task = "regression" if label_mode == "regression" else "classification"
    spec = DatasetSpec(
        name=name,
        modalities=tuple(ModalitySpec(m, "sequence", x[m].shape[1:]) for m in mods),
        task=task,
        n_classes=None if task == "regression" else (7 if label_mode == "7class" else 2),
        description=f"MultiBench {name} ({files[variant]}), alignment={alignment}, labels={label_mode}",
    )
    kw: dict[str, Any] = {}
    if alignment != "none":
        kw["lengths"] = {m: np.maximum(np.concatenate(lengths[m]), 1) for m in mods}
    mask = {m: np.concatenate(present[m]) for m in mods}
    return build_dataset_from_file(
        file, spec, x=x, y=y, mask=mask if not all(v.all() for v in mask.values()) else None,
        split=np.concatenate(split), **kw,
    )  # fmt: skip


@register_dataset("mosi", description="CMU-MOSI sentiment (MultiBench pickle: mosi_data.pkl / mosi_raw.pkl)")
def load_mosi(
    path: str | None = None,
    variant: str = "aligned",
    alignment: str = "text",
    label_mode: str = "binary",
    modalities: Sequence[str] | None = None,
    max_seq_len: int | None = None,
    trust_pickle: bool = False,
) -> MultimodalDataset:
    """CMU-MOSI: vision, audio, text sequences; ``variant`` aligned (mosi_data.pkl) or raw (mosi_raw.pkl)."""
    return load_affect("mosi", path, variant, alignment, label_mode, modalities, max_seq_len, trust_pickle)


@register_dataset("mosei", description="CMU-MOSEI sentiment (mosei_senti_data.pkl: 35-d vision; mosei_raw.pkl: 713-d)")
def load_mosei(
    path: str | None = None,
    variant: str = "aligned",
    alignment: str = "text",
    label_mode: str = "binary",
    modalities: Sequence[str] | None = None,
    max_seq_len: int | None = None,
    trust_pickle: bool = False,
) -> MultimodalDataset:
    """CMU-MOSEI: ``variant`` aligned (mosei_senti_data.pkl, 35-d FACET vision) or raw (mosei_raw.pkl, the 713-d
    visual features OVA-IB uses)."""
    return load_affect("mosei", path, variant, alignment, label_mode, modalities, max_seq_len, trust_pickle)


@register_dataset("urfunny", description="UR-FUNNY humor detection (MultiBench humor.pkl)")
def load_urfunny(
    path: str | None = None,
    alignment: str = "text",
    label_mode: str = "binary",
    modalities: Sequence[str] | None = None,
    max_seq_len: int | None = None,
    trust_pickle: bool = False,
) -> MultimodalDataset:
    """UR-FUNNY (humor.pkl): binary humor label (label > 0)."""
    return load_affect("urfunny", path, "aligned", alignment, label_mode, modalities, max_seq_len, trust_pickle)


@register_dataset("mustard", description="MUStARD sarcasm detection (MultiBench sarcasm.pkl)")
def load_mustard(
    path: str | None = None,
    alignment: str = "text",
    label_mode: str = "binary",
    modalities: Sequence[str] | None = None,
    max_seq_len: int | None = None,
    trust_pickle: bool = False,
) -> MultimodalDataset:
    """MUStARD (sarcasm.pkl): binary sarcasm label (label > 0)."""
    return load_affect("mustard", path, "aligned", alignment, label_mode, modalities, max_seq_len, trust_pickle)
