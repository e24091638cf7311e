"""EEG/fNIRS recordings of a folder into one data set file: find and pair the recordings (:func:`find_recordings`),
group them by subject (:func:`subject_groups`), preprocess them and write mmib's generic ``.npz``
(:func:`preprocess_to_npz`, which ``mmib physio preprocess`` runs).

The ``.npz`` holds one array per modality (``eeg``, ``fnirs``; first axis = epoch), ``y`` (condition index),
``groups`` (subject: the ``sub-<label>`` part of the stem when every stem has one, else the recording),
``latent_<name>`` (from ``<stem>_events.tsv`` sidecars when present) and the ``meta`` member (task, classes, latents,
and per modality kind / rate / channels); a ``.json`` sidecar holds the same metadata with the pipeline settings and
the input files. ``build_dataset("generic", path=OUT.npz)`` and ``data=generic data.path=OUT.npz`` read it.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np

_SUBJECT_RE = re.compile(r"(?:^|_)sub-(?P<label>[A-Za-z0-9]+)(?:_|$)")
_EEG_RE = re.compile(r"^(?P<stem>.+)_eeg\.(edf|bdf|vhdr|set|fif|fif\.gz)$", re.IGNORECASE)
_NIRS_RE = re.compile(r"^(?P<stem>.+)_nirs(\.(snirf|fif|fif\.gz|csv))?$", re.IGNORECASE)


def find_recordings(folder: Path) -> list[dict]:
    """The recordings of a folder: a BIDS data set (``dataset_description.json``; EEG and NIRS through mne-bids,
    paired by subject, session, task and run), or ``<stem>_eeg.*`` and ``<stem>_nirs.*`` files (a NIRx recording:
    a folder ``<stem>_nirs/``) paired by stem (sorted by stem)."""
    from mmib.data.physio.preprocess import PhysioInputError
    from mmib.data.physio.readers import find_bids_recordings, is_bids_root, is_nirx_folder

    if not folder.is_dir():
        raise PhysioInputError(f"{folder} is not a folder")
    if is_bids_root(folder):
        return find_bids_recordings(folder)
    found: dict[str, dict[str, Path | None]] = {}
    for p in sorted(folder.iterdir()):
        for key, rx in (("eeg", _EEG_RE), ("fnirs", _NIRS_RE)):
            m = rx.match(p.name)
            if m and (p.is_file() if m.group(2) or key == "eeg" else is_nirx_folder(p)):
                entry = found.setdefault(m.group("stem"), {"eeg": None, "fnirs": None})
                if entry[key] is not None:
                    raise PhysioInputError(f"{folder}: two {key} recordings for '{m.group('stem')}'")
                entry[key] = p
    if not found:
        raise PhysioInputError(
            f"{folder}: no recordings named <stem>_eeg.<edf|bdf|vhdr|set|fif> or "
            "<stem>_nirs.<snirf|fif|csv> (or a NIRx folder <stem>_nirs/), and no BIDS dataset_description.json"
        )
    return [{"stem": Path(k), **v} for k, v in sorted(found.items())]


def subject_groups(stems) -> tuple[np.ndarray, str]:
    """One group id per recording: its subject when every stem names one (``sub-<label>``, BIDS), else the recording.

    Returns the ids (0, 1, … in order of first appearance) and what they mean (``subject`` or ``recording``).
    """
    labels = [_SUBJECT_RE.search(Path(str(st)).name) for st in stems]
    if labels and all(m is not None for m in labels):
        keys = [m.group("label") for m in labels]  # type: ignore[union-attr]
        kind = "subject"
    else:
        keys = [str(st) for st in stems]
        kind = "recording"
    order: dict[str, int] = {}
    return np.array([order.setdefault(k, len(order)) for k in keys], dtype=np.int64), kind


def _latent_array(values: np.ndarray) -> tuple[np.ndarray, int]:
    """A latent column as stored (discrete: int64 codes 0..n-1; continuous: float) and its number of values (0)."""
    if values.dtype.kind in "iu" and values.size and values.min() >= 0:
        return values.astype(np.int64), max(2, int(values.max()) + 1)
    return values.astype(np.float64), 0


def preprocess_to_npz(recordings, out: Path, representation: str, eeg_cfg, fnirs_cfg, conditions=None) -> dict:
    """Preprocess recordings (``[{"stem", "eeg", "fnirs"}]``) and write the ``.npz`` + ``.json``; returns the arrays.

    The ``.npz`` is mmib's generic format (``docs/guide/data.md``): modality arrays, ``y``, ``groups``,
    ``latent_<name>`` and a ``meta`` member that ``build_dataset("generic", path=out)`` reads (kinds, sampling
    rates and channel names of the modalities, task, classes, latents).
    """
    from mmib.data.physio.io import read_events_tsv
    from mmib.data.physio.preprocess import PhysioInputError, PhysioWarning, config_dict, preprocess_recording
    from mmib.utils.io import atomic_path, atomic_write_json

    if out.suffix != ".npz":
        raise PhysioInputError(f"--out {out}: expected a file name ending in .npz")
    blocks, latents, ys, recs = [], [], [], []
    skipped: set[str] = set()
    meta_recs = []
    rec_groups, group_kind = subject_groups([r["stem"] for r in recordings])
    for i, r in enumerate(recordings):
        rec = preprocess_recording(r["eeg"], r["fnirs"], eeg_cfg, fnirs_cfg, conditions, source=str(r["stem"]))
        if conditions is None:
            conditions = rec.conditions  # the first recording fixes the class order for the others
        elif list(rec.conditions) != list(conditions):
            raise PhysioInputError(f"{r['stem']}: conditions {rec.conditions} differ from {list(conditions)}")
        arrays = rec.signals if representation == "signal" else rec.features
        blocks.append(arrays)
        recs.append(rec)
        ys.append(rec.y)
        any_file = r["eeg"] if r["eeg"] is not None else r["fnirs"]
        any_file = Path(str(getattr(any_file, "fpath", any_file)))  # a BIDSPath's file
        tsv = any_file.with_name(f"{Path(str(r['stem'])).name}_events.tsv")
        lat = {}
        if tsv.is_file():
            table = read_events_tsv(tsv)
            idx = [int(np.argmin(np.abs(table["onset"] - t))) for t in rec.onsets]
            off = np.abs(table["onset"][idx] - rec.onsets)
            if np.any(off > 0.05):
                raise PhysioInputError(f"{tsv}: no row within 50 ms of the epoch at {rec.onsets[int(np.argmax(off))]:.2f} s")
            rows = np.ones(len(table["onset"]), bool)
            if "trial_type" in table:
                rows = np.isin(table["trial_type"], list(conditions))
            missing = int(rows.sum()) - len(set(idx))
            if missing > 0:
                warnings.warn(f"{any_file}: {missing} of {int(rows.sum())} trials of {tsv.name} have no epoch (last "
                              f"row at {table['onset'][rows].max():.1f} s; a truncated recording, or epochs past its "
                              "end); they are left out", PhysioWarning, stacklevel=2)  # fmt: skip
            for k, v in table.items():
                if k in ("onset", "duration", "trial_type", "sample", "value") or v.dtype.kind not in "fi":
                    continue
                if not np.all(np.isfinite(v[idx])):  # e.g. a peak time that only exists on task trials
                    skipped.add(k)
                    continue
                lat[k] = v[idx]
        latents.append(lat)
        meta_recs.append({"stem": str(r["stem"]), "eeg": str(r["eeg"]) if r["eeg"] else None,
                          "fnirs": str(r["fnirs"]) if r["fnirs"] else None, "n_epochs": int(len(rec.y)),
                          "group": int(rec_groups[i]), "events": str(tsv) if lat else None,
                          "clock_alignment": rec.alignment})  # fmt: skip
    mods = list(blocks[0])
    for r, b, rec in zip(recordings, blocks, recs):
        if list(b) != mods:
            raise PhysioInputError(f"{r['stem']}: modalities {list(b)} differ from the first recording's {mods}")
        for m in mods:
            r0, r1 = recs[0].rates.get(m), rec.rates.get(m)  # a SNIRF 10 Hz may read back as 10.000000000000002
            if representation == "signal" and (r0 != r1 if not (r0 and r1) else abs(r1 / r0 - 1) > 1e-6):
                raise PhysioInputError(f"{r['stem']}: {m} sampling rate {rec.rates.get(m)} Hz differs from the first "
                                       f"recording's {recs[0].rates.get(m)} Hz; pass --eeg-resample or resample first")  # fmt: skip
            if list(rec.channels.get(m) or []) != list(recs[0].channels.get(m) or []):
                raise PhysioInputError(f"{r['stem']}: {m} channels differ from the first recording's "
                                       f"({len(rec.channels.get(m) or [])} vs {len(recs[0].channels.get(m) or [])} "
                                       "names); use the same montage and channel names everywhere")  # fmt: skip
    out_arrays: dict[str, np.ndarray] = {}
    for m in mods:
        shapes = {b[m].shape[1:] for b in blocks}
        if len(shapes) > 1:
            raise PhysioInputError(f"modality '{m}': recordings give different per-epoch shapes {sorted(shapes)}; "
                                   "use the same montage, rate and window everywhere")  # fmt: skip
        out_arrays[m] = np.concatenate([b[m] for b in blocks]).astype(np.float32)
    out_arrays["y"] = np.concatenate(ys).astype(np.int64)
    out_arrays["groups"] = np.concatenate([np.full(len(y), g, dtype=np.int64) for y, g in zip(ys, rec_groups)])
    common = set(latents[0]) if latents else set()
    for lat in latents[1:]:
        common &= set(lat)
    common -= skipped
    latent_values: dict[str, int] = {}
    for k in sorted(common):
        out_arrays[f"latent_{k}"], latent_values[k] = _latent_array(np.concatenate([lat[k] for lat in latents]))
    first = recs[0]
    signal = representation == "signal"
    meta = {
        "name": out.stem,
        "task": "classification",
        "n_classes": max(2, len(conditions)),
        "latents": latent_values,
        "description": f"EEG/fNIRS epochs ({representation}) preprocessed by mmib physio preprocess from "
                       f"{len(recordings)} recording(s); y = condition ({', '.join(conditions)}); groups = {group_kind}",
        "modalities": {m: {"kind": "signal" if signal else "vector",
                           "rate": first.rates.get(m) if signal else None,
                           "channels": list(first.channels[m]) if signal and first.channels.get(m) else None,
                           "source_channels": None if signal else list(first.channels.get(m) or []),
                           "feature_names": None if signal else first.feature_names.get(m)}
                       for m in mods},  # fmt: skip
        "representation": representation,
        "conditions": list(conditions),
        "groups": group_kind,
    }
    out_arrays["meta"] = np.array(json.dumps(meta))
    sidecar = {
        **meta,
        "eeg_pipeline": config_dict(eeg_cfg),
        "fnirs_pipeline": config_dict(fnirs_cfg),
        "recordings": meta_recs,
        "latents_left_out": {k: "NaN/n/a on some epochs" for k in sorted(skipped)},
    }
    with atomic_path(out) as tmp:  # never a half-written OUT.npz
        np.savez_compressed(tmp, **out_arrays)
    atomic_write_json(out.with_suffix(".json"), sidecar)
    return out_arrays
