"""Readers of EEG and fNIRS recordings, all through MNE / mne-bids, each bad file a one-line error naming it.

=============================== ======== ==================================================================
format                          modality how
=============================== ======== ==================================================================
EDF / BDF (``.edf``, ``.bdf``)  EEG      :func:`mne.io.read_raw_edf` / ``read_raw_bdf``
BrainVision (``.vhdr``)         EEG      :func:`mne.io.read_raw_brainvision` (+ ``.eeg``, ``.vmrk``)
EEGLAB (``.set``)               EEG      :func:`mne.io.read_raw_eeglab` (+ ``.fdt`` when the data are apart)
FIF (``.fif``, ``.fif.gz``)     both     :func:`mne.io.read_raw_fif`
SNIRF (``.snirf``)              fNIRS    :func:`mne.io.read_raw_snirf`
NIRx (a folder, or its ``.hdr``) fNIRS   :func:`mne.io.read_raw_nirx` (``.hdr .wl1 .wl2 .evt .inf .set .tpl
                                         config.txt probeInfo.mat``)
Hitachi ETG (``.csv``)          fNIRS    :func:`mne.io.read_raw_hitachi`; events from the ``Mark`` column; optode
                                         positions on the holder's fixed 3 cm grid (MNE leaves them unset)
TU Berlin hybrid (``cnt*.mat``) both     BBCI toolbox structs ``cnt``, ``mrk``, ``mnt`` (Shin et al. 2016,
                                         2018) read with :mod:`pymatreader`; see :func:`read_tuberlin`
BIDS (a data set folder)        both     :func:`mne_bids.read_raw_bids` (``eeg`` and ``nirs`` data types)
=============================== ======== ==================================================================

Every reader returns a preloaded :class:`mne.io.BaseRaw`. A file MNE cannot parse raises
:class:`PhysioInputError` with the file and MNE's reason on one line. MNE's warnings while reading (e.g. "Number of
records from the header does not match the file size", an EDF cut short) are re-issued as :class:`PhysioWarning`
naming the file. Nothing here executes code from a file: ``.mat`` files are read as data by pymatreader / scipy.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from mmib.data.physio.read_base import (
    EEG_EXTENSIONS,
    FNIRS_EXTENSIONS,
    FNIRS_TYPES,
    HITACHI_SPACING_M,
    PhysioInputError,
    first_line,
    mne_read,
    suffix,
)
from mmib.data.physio.tuberlin import read_tuberlin


# ---------------------------------------------------------------------------------------------------- EEG
def read_eeg(path: str | Path):
    """Read an EEG recording (EDF, BDF, BrainVision, EEGLAB ``.set``, FIF, TU Berlin ``cnt*.mat``), data loaded.

    Raises:
        FileNotFoundError: when the file does not exist.
        PhysioInputError: for an unsupported extension, an unreadable file or a file without EEG channels.
    """
    import mne

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"EEG recording {path} does not exist")
    ext = suffix(path)
    what = "EEG recording"
    if ext in (".edf", ".bdf"):
        raw = mne_read(getattr(mne.io, f"read_raw_{ext[1:]}"), path, what, preload=True, verbose="warning")
    elif ext == ".vhdr":
        raw = mne_read(mne.io.read_raw_brainvision, path, what, preload=True, verbose="warning")
    elif ext == ".set":
        raw = mne_read(mne.io.read_raw_eeglab, path, what, preload=True, verbose="warning")
    elif ext in (".fif", ".fif.gz"):
        raw = mne_read(mne.io.read_raw_fif, path, what, preload=True, verbose="warning")
    elif ext == ".mat":
        raw = read_tuberlin(path, "eeg")
    else:
        raise PhysioInputError(
            f"{what} {path}: unsupported extension '{ext}'; expected one of {', '.join(EEG_EXTENSIONS)}"
        )
    if not any(t == "eeg" for t in raw.get_channel_types()):
        raise PhysioInputError(f"{what} {path}: no EEG channels (types: {sorted(set(raw.get_channel_types()))})")
    return raw


# ---------------------------------------------------------------------------------------------------- fNIRS
def is_nirx_folder(path: Path) -> bool:
    return path.is_dir() and any(path.glob("*.hdr")) and any(path.glob("*.wl1"))


def read_fnirs(path: str | Path):
    """Read an fNIRS recording (SNIRF, FIF, a NIRx folder or its ``.hdr``, Hitachi ``.csv``, TU Berlin ``.mat``).

    Raises:
        FileNotFoundError: when the file does not exist.
        PhysioInputError: for an unsupported extension, an unreadable file or a file without fNIRS channels.
    """
    import mne

    path = Path(path)
    what = "fNIRS recording"
    if path.is_dir():
        if not is_nirx_folder(path):
            raise PhysioInputError(f"{what} {path}: a folder, but not a NIRx recording (no *.hdr with *.wl1/*.wl2)")
        raw = mne_read(mne.io.read_raw_nirx, path, what, preload=True, verbose="warning")
    else:
        if not path.is_file():
            raise FileNotFoundError(f"{what} {path} does not exist")
        ext = suffix(path)
        if ext == ".snirf":
            raw = mne_read(mne.io.read_raw_snirf, path, what, optode_frame="head", preload=True, verbose="warning")
        elif ext in (".fif", ".fif.gz"):
            raw = mne_read(mne.io.read_raw_fif, path, what, preload=True, verbose="warning")
        elif ext == ".hdr":
            raw = mne_read(mne.io.read_raw_nirx, path, what, preload=True, verbose="warning")
        elif ext == ".csv":
            raw = read_hitachi(path)
        elif ext == ".mat":
            raw = read_tuberlin(path, "fnirs")
        else:
            raise PhysioInputError(
                f"{what} {path}: unsupported extension '{ext}'; expected one of {', '.join(FNIRS_EXTENSIONS)}"
            )
    types = set(raw.get_channel_types())
    if not types & FNIRS_TYPES:
        raise PhysioInputError(f"{what} {path}: no fNIRS channels (types: {sorted(types)})")
    return raw


def read_hitachi(path: Path):
    """A Hitachi ETG ``.csv`` through :func:`mne.io.read_raw_hitachi`, with events and nominal optode positions.

    The ``Mark`` column's non-zero runs become annotations named by their value; the stim channels are dropped.
    Hitachi files hold no optode positions: sources and detectors are put on the probe holder's grid (3 cm between
    neighbours, flat), which gives the right source-detector distances for the Beer–Lambert law but no head
    positions.
    """
    import mne

    raw = mne_read(mne.io.read_raw_hitachi, path, "fNIRS recording", preload=True, verbose="warning")
    stim = [c for c, t in zip(raw.ch_names, raw.get_channel_types()) if t == "stim"]
    onsets, descs = [], []
    if "Mark" in stim:
        mark = raw.get_data(picks="Mark")[0]
        d = np.diff(np.r_[0.0, mark])
        for i in np.flatnonzero((d != 0) & (mark != 0)):
            onsets.append(i / raw.info["sfreq"])
            descs.append(str(int(mark[i])) if float(mark[i]).is_integer() else str(mark[i]))
    raw.drop_channels(stim)
    if onsets:
        raw.set_annotations(mne.Annotations(onsets, [0.0] * len(onsets), descs, orig_time=raw.annotations.orig_time))
    # grid positions: MNE numbers Hitachi optodes along the rows of the holder; its pairs are grid neighbours
    grid = _hitachi_grid(raw)
    for ch in raw.info["chs"]:
        m = re.match(r"S(\d+)_D(\d+)", ch["ch_name"])
        if m is None or grid is None:
            continue
        s, d = grid["S"][int(m.group(1))], grid["D"][int(m.group(2))]
        ch["loc"][3:6], ch["loc"][6:9], ch["loc"][:3] = s, d, (s + d) / 2
    return raw


def _hitachi_grid(raw) -> dict[str, dict[int, np.ndarray]] | None:
    """Positions of MNE's Hitachi sources/detectors on a flat grid, spacing :data:`HITACHI_SPACING_M`."""
    from mne.io.hitachi.hitachi import _compute_pairs

    n_pairs = len(raw.ch_names) // 2
    for rows, cols, n in ((3, 3, 2), (3, 5, 1), (4, 4, 1), (3, 11, 1)):
        pairs = _compute_pairs(rows, cols, n=n)
        if len(pairs) != n_pairs:
            continue
        # rebuild which grid cell each source / detector index sits in (MNE's own numbering, _compute_pairs)
        n_tot = rows * cols
        sd_idx = (np.arange(n_tot) // 2).reshape(rows, cols)
        d_bool = np.array([np.arange(r, r + cols) % 2 for r in range(rows)], bool)
        out: dict[str, dict[int, np.ndarray]] = {"S": {}, "D": {}}
        for probe in range(n):
            for r in range(rows):
                for c in range(cols):
                    key = "D" if d_bool[r, c] else "S"
                    idx = int(sd_idx[r, c]) + 1 + probe * (int(sd_idx.max()) + 1)
                    out[key][idx] = np.array([c, -r - 4 * probe, 0.0]) * HITACHI_SPACING_M
        return out
    return None


# ---------------------------------------------------------------------------------------------------- BIDS
def is_bids_root(path: Path) -> bool:
    return path.is_dir() and (path / "dataset_description.json").is_file()


def find_bids_recordings(root: Path) -> list[dict[str, Any]]:
    """EEG and NIRS recordings of a BIDS data set (mne-bids), paired by subject, session, task and run.

    Returns ``[{"stem", "eeg", "fnirs"}]`` where ``eeg``/``fnirs`` are :class:`mne_bids.BIDSPath` (or ``None``) and
    ``stem`` is ``sub-<s>[_ses-<x>]_task-<t>[_run-<r>]`` under ``root``.
    """
    from mmib.utils.deps import require

    require("mne_bids", "physio", f"reading the BIDS data set {root}")
    from mne_bids import BIDSPath, find_matching_paths

    found: dict[tuple, dict[str, Any]] = {}
    for datatype, key, exts in (("eeg", "eeg", [".edf", ".bdf", ".vhdr", ".set"]), ("nirs", "fnirs", [".snirf"])):
        try:
            paths = find_matching_paths(root, datatypes=datatype, suffixes=datatype, extensions=exts)
        except Exception as e:  # noqa: BLE001
            raise PhysioInputError(f"BIDS data set {root}: not readable by mne-bids ({first_line(e)})") from e
        for bp in paths:
            ident = (bp.subject, bp.session, bp.task, bp.acquisition, bp.run)
            entry = found.setdefault(ident, {"eeg": None, "fnirs": None})
            if entry[key] is not None:
                raise PhysioInputError(f"BIDS data set {root}: two {datatype} files for {bp.basename}")
            entry[key] = bp
    if not found:
        raise PhysioInputError(f"BIDS data set {root}: no EEG (.edf/.bdf/.vhdr/.set) or NIRS (.snirf) recordings")
    out = []
    for ident, entry in sorted(found.items(), key=lambda kv: tuple(str(v) for v in kv[0])):
        stem = BIDSPath(subject=ident[0], session=ident[1], task=ident[2], acquisition=ident[3], run=ident[4])
        out.append({"stem": root / f"sub-{ident[0]}" / stem.basename, **entry})
    return out


def read_bids(bids_path, modality: str):
    """One BIDS recording through :func:`mne_bids.read_raw_bids` (events from its ``events.tsv``)."""
    from mne_bids import read_raw_bids

    raw = mne_read(read_raw_bids, Path(str(bids_path.fpath)), f"BIDS {modality} recording", bids_path,
                   verbose="warning")  # fmt: skip
    types = set(raw.get_channel_types())
    if modality == "eeg" and "eeg" not in types:
        raise PhysioInputError(f"BIDS EEG recording {bids_path.fpath}: no EEG channels (types: {sorted(types)})")
    if modality == "fnirs" and not types & FNIRS_TYPES:
        raise PhysioInputError(f"BIDS NIRS recording {bids_path.fpath}: no fNIRS channels (types: {sorted(types)})")
    return raw


def read_any(item, modality: str):
    """A path (file or NIRx folder), a :class:`mne_bids.BIDSPath`, or an MNE Raw (returned as is)."""
    if item is None or hasattr(item, "get_data"):
        return item
    if type(item).__name__ == "BIDSPath":
        return read_bids(item, modality)
    return read_eeg(item) if modality == "eeg" else read_fnirs(item)
