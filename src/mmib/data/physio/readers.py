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
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mmib.errors import MMIBError


class PhysioInputError(MMIBError, ValueError):
    """A recording, channel, event or option is not what the pipeline expects; the message names it."""


class PhysioWarning(UserWarning):
    """Legal but suspicious input (a truncated file, trials dropped); the message names the file."""


FNIRS_TYPES = {"fnirs_cw_amplitude", "fnirs_od", "hbo", "hbr"}
EEG_EXTENSIONS = (".edf", ".bdf", ".vhdr", ".set", ".fif", ".fif.gz", ".mat")
FNIRS_EXTENSIONS = (".snirf", ".fif", ".fif.gz", ".hdr", ".csv", ".mat", "(NIRx folder)")
#: wavelengths (nm) of the NIRScout of the TU Berlin data sets (Shin et al. 2016, 2018) when a file does not say
TUBERLIN_WAVELENGTHS = (760.0, 850.0)
#: the fixed optode spacing of Hitachi ETG probe holders (m)
HITACHI_SPACING_M = 0.03


def suffix(path: Path) -> str:
    name = path.name.lower()
    return ".fif.gz" if name.endswith(".fif.gz") else path.suffix.lower()


def _first_line(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0]}" if msg else type(e).__name__


def mne_read(reader: Callable[..., Any], path: Path, what: str, *args, **kwargs):
    """Call an MNE reader; any failure becomes a one-line :class:`PhysioInputError` naming ``path``.

    MNE's warnings during the read are re-issued as :class:`PhysioWarning` prefixed by the file.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            raw = reader(*args, **kwargs) if args else reader(path, **kwargs)
            raw.load_data(verbose="error")
        except (MMIBError, MemoryError):
            raise
        except Exception as e:  # noqa: BLE001  (MNE raises many kinds for a malformed file)
            raise PhysioInputError(f"{what} {path}: not a readable file ({_first_line(e)})") from e
    for w in caught:
        if issubclass(w.category, DeprecationWarning) or "naming conventions" in str(w.message):
            continue
        text = str(w.message).strip().splitlines()[0] if str(w.message).strip() else ""
        if "does not match the file size" in text:
            text = _truncation(path, raw)
        warnings.warn(f"{what} {path}: {text}", PhysioWarning, stacklevel=3)
    return raw


def _truncation(path: Path, raw) -> str:
    """What a truncated EDF/BDF lost: its header's length against the data present, and about how many trials."""
    held = raw.n_times / raw.info["sfreq"]
    try:
        head = path.read_bytes()[:256]
        declared = int(head[236:244].decode("ascii").strip()) * float(head[244:252].decode("ascii").strip())
    except (ValueError, OSError):
        return f"the file is shorter than its header says (it holds {held:.1f} s); trials after its end are lost"
    n_trials = sum(1 for d in raw.annotations.description if not d.upper().startswith(("BAD", "EDGE")))
    lost = max(declared - held, 0.0)
    est = f"about {round(n_trials / held * lost)} trials" if n_trials and held > 0 else "its trials"
    return (f"truncated: the header declares {declared:.1f} s, the file holds {held:.1f} s; {est} after "
            f"{held:.1f} s are lost (their annotations were in the missing part)")


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


# ---------------------------------------------------------------------------------------------------- TU Berlin
def _load_mat(path: Path) -> dict[str, Any]:
    from mmib.utils.deps import require

    require("pymatreader", "physio", f"reading {path.name} (MATLAB)")
    from pymatreader import read_mat

    try:
        return read_mat(str(path))
    except Exception as e:  # noqa: BLE001
        raise PhysioInputError(f"MATLAB file {path}: not readable ({_first_line(e)})") from e


def _struct(mat: dict[str, Any], prefix: str, path: Path) -> tuple[str, Any]:
    keys = [k for k in mat if k == prefix or k.startswith(prefix + "_")]
    if len(keys) != 1:
        raise PhysioInputError(
            f"TU Berlin file {path}: expected one variable named '{prefix}' or '{prefix}_<task>', found "
            f"{', '.join(k for k in mat if not k.startswith('__')) or 'none'}"
        )
    return keys[0], mat[keys[0]]


def _need(struct: Any, key: str, path: Path, where: str) -> Any:
    if not isinstance(struct, dict) or key not in struct:
        have = ", ".join(struct) if isinstance(struct, dict) else type(struct).__name__
        raise PhysioInputError(f"TU Berlin file {path}: {where} has no field '{key}' (fields: {have})")
    return struct[key]


def _strings(x: Any) -> list[str]:
    if isinstance(x, str):
        return [x]
    return [str(v) for v in np.atleast_1d(np.asarray(x, dtype=object)).ravel()]


_UNIT_SCALE = {"uv": 1e-6, "µv": 1e-6, "μv": 1e-6, "mv": 1e-3, "v": 1.0,
               "mmol/l": 1e-3, "umol/l": 1e-6, "µmol/l": 1e-6, "μmol/l": 1e-6, "mol/l": 1.0, "mm": 1e-3,
               "um": 1e-6, "µm": 1e-6, "μm": 1e-6}  # fmt: skip


def _unit_scale(cnt: dict, default: float, path: Path, where: str) -> float:
    unit = cnt.get("yUnit")
    if unit is None or (isinstance(unit, np.ndarray) and unit.size == 0):
        return default
    u = str(unit).strip().lower().replace(" ", "")
    if u not in _UNIT_SCALE:
        raise PhysioInputError(f"TU Berlin file {path}: {where}.yUnit '{unit}' unknown; expected one of "
                               f"{', '.join(sorted(_UNIT_SCALE))}")  # fmt: skip
    return _UNIT_SCALE[u]


def _split_sites(label: str, sites: set[str]) -> tuple[str, str] | None:
    """'AF7Fp1' → ('AF7', 'Fp1') when both halves are 10-05 site names (case-insensitive)."""
    low = {s.lower(): s for s in sites}
    for i in range(1, len(label)):
        a, b = label[:i].lower(), label[i:].lower()
        if a in low and b in low:
            return low[a], low[b]
    return None


def read_tuberlin(path: str | Path, modality: str, session: int | None = None):
    """A TU Berlin hybrid EEG–NIRS recording (BBCI toolbox MATLAB format; Shin et al. 2016 TNSRE, 2018 Sci. Data).

    Files, one folder per subject and modality: ``cnt.mat`` (or ``cnt_<task>.mat``) holding ``cnt``, a struct or a
    cell array of structs (one per session) with ``x`` (samples × channels), ``fs`` (Hz), ``clab`` (channel labels)
    and optionally ``yUnit``; ``mrk.mat`` holding ``mrk`` (same cell layout) with ``time`` (ms from the session's
    start), ``y`` (classes × trials, one-hot) and ``className``, or ``event.desc`` (codes); ``mnt.mat`` (optional)
    holding ``mnt`` with ``clab`` and, for NIRS, ``source.clab``, ``detector.clab`` and ``sd`` (channel → 1-based
    source, detector). ``path`` is the ``cnt*.mat`` file; ``mrk``/``mnt`` are found next to it by the same suffix.

    EEG: ``x`` in µV unless ``yUnit`` says otherwise; channels whose label contains ``EOG``/``ECG``/``EMG``/
    ``RESP`` get those types; positions from MNE's ``standard_1005`` template. NIRS: ``x`` with labels ending in
    ``lowWL``/``highWL`` are raw intensities (``fnirs_cw_amplitude``, wavelengths from ``cnt.wavelengths`` or
    760/850 nm); ``cnt.oxy``/``cnt.deoxy`` sub-structs are HbO/HbR (mmol/L unless ``yUnit`` says otherwise).
    A NIRS channel label names its source and detector 10-05 sites (``AF7Fp1``), or ``mnt.sd`` does; optode
    positions come from MNE's 10-05 template (``colin27_1005``, metres), which gives the Beer–Lambert law its distances.

    Args:
        session: index of the session to read (0-based) when ``cnt`` is a cell array; ``None`` concatenates all
            sessions (MNE marks the joins ``BAD boundary`` / ``EDGE boundary``).

    Raises:
        PhysioInputError: naming the file and the missing or malformed variable/field.
    """
    import mne

    path = Path(path)
    if not path.name.lower().startswith("cnt") or path.suffix.lower() != ".mat":
        raise PhysioInputError(f"TU Berlin file {path}: expected the continuous-data file cnt.mat or cnt_<task>.mat")
    tail = path.name[3:]
    name, cnts = _struct(_load_mat(path), "cnt", path)
    mrk_path = path.with_name("mrk" + tail)
    if not mrk_path.is_file():
        raise PhysioInputError(f"TU Berlin file {path}: its markers {mrk_path.name} are missing next to it")
    _, mrks = _struct(_load_mat(mrk_path), "mrk", mrk_path)
    mnt_path = path.with_name("mnt" + tail)
    mnt = _struct(_load_mat(mnt_path), "mnt", mnt_path)[1] if mnt_path.is_file() else None
    cnts = cnts if isinstance(cnts, list) else [cnts]
    mrks = mrks if isinstance(mrks, list) else [mrks]
    if len(cnts) != len(mrks):
        raise PhysioInputError(f"TU Berlin file {mrk_path}: {len(mrks)} marker sessions for {len(cnts)} data sessions")
    idx = range(len(cnts)) if session is None else [session]
    if session is not None and not 0 <= session < len(cnts):
        raise PhysioInputError(f"TU Berlin file {path}: session {session} out of range (it holds {len(cnts)})")
    raws = []
    for i in idx:
        where = f"{name}{{{i + 1}}}" if len(cnts) > 1 else name
        raw = (_tuberlin_eeg if modality == "eeg" else _tuberlin_nirs)(cnts[i], mnt, path, where)
        raw.set_annotations(_tuberlin_annotations(mrks[i], mrk_path, raw.info["sfreq"], raw.times[-1]))
        raws.append(raw)
    return raws[0] if len(raws) == 1 else mne.concatenate_raws(raws, verbose="error")


def _tuberlin_x(cnt: Any, path: Path, where: str) -> tuple[np.ndarray, float, list[str]]:
    x = np.asarray(_need(cnt, "x", path, where), dtype=float)
    fs = float(np.asarray(_need(cnt, "fs", path, where)).ravel()[0])
    clab = _strings(_need(cnt, "clab", path, where))
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] != len(clab):
        raise PhysioInputError(f"TU Berlin file {path}: {where}.x has shape {x.shape}, expected (samples, "
                               f"{len(clab)} channels of clab)")  # fmt: skip
    if not np.all(np.isfinite(x)):
        raise PhysioInputError(f"TU Berlin file {path}: {where}.x holds NaN or inf")
    if fs <= 0:
        raise PhysioInputError(f"TU Berlin file {path}: {where}.fs must be > 0, got {fs}")
    return x, fs, clab


def _tuberlin_eeg(cnt: Any, mnt: Any, path: Path, where: str):
    import mne

    from mmib.data.physio.montage import standard_montage

    x, fs, clab = _tuberlin_x(cnt, path, where)
    types = []
    for c in clab:
        u = c.upper()
        types.append(next((t for p, t in (("EOG", "eog"), ("ECG", "ecg"), ("EKG", "ecg"), ("EMG", "emg"),
                                          ("RESP", "resp")) if p in u), "eeg"))  # fmt: skip
    info = mne.create_info(clab, fs, types)
    raw = mne.io.RawArray(x.T * _unit_scale(cnt, 1e-6, path, where), info, verbose="error")
    raw.set_montage(standard_montage(), on_missing="ignore", match_case=False, verbose="error")
    return raw


def _tuberlin_nirs(cnt: Any, mnt: Any, path: Path, where: str):
    import mne

    name = "colin27_1005" if "colin27_1005" in mne.channels.get_builtin_montages() else "standard_1005"
    sites = mne.channels.make_standard_montage(name).get_positions()["ch_pos"]
    if isinstance(cnt, dict) and "oxy" in cnt and "deoxy" in cnt:
        xo, fs, lab_o = _tuberlin_x(cnt["oxy"], path, f"{where}.oxy")
        xd, fs_d, lab_d = _tuberlin_x(cnt["deoxy"], path, f"{where}.deoxy")
        if xo.shape != xd.shape or fs != fs_d:
            raise PhysioInputError(f"TU Berlin file {path}: {where}.oxy and .deoxy differ in shape or rate")
        scale = _unit_scale(cnt["oxy"], 1e-3, path, f"{where}.oxy")
        pairs = [re.sub(r"(oxy|deoxy)$", "", c, flags=re.IGNORECASE) for c in lab_o]
        data = np.empty((2 * len(pairs), xo.shape[0]))
        data[0::2], data[1::2] = xo.T * scale, xd.T * scale
        kinds, wls = ("hbo", "hbr"), (0.0, 0.0)
    else:
        x, fs, clab = _tuberlin_x(cnt, path, where)
        low = [c[: -len("lowWL")] for c in clab if c.endswith("lowWL")]
        high = [c[: -len("highWL")] for c in clab if c.endswith("highWL")]
        if not low or sorted(low) != sorted(high) or len(low) + len(high) != len(clab):
            raise PhysioInputError(f"TU Berlin file {path}: {where}.clab must name each NIRS channel twice, "
                                   "'<pair>lowWL' and '<pair>highWL' (or give .oxy/.deoxy)")  # fmt: skip
        pairs = low
        data = np.empty((2 * len(pairs), x.shape[0]))
        data[0::2] = x[:, [clab.index(p + "lowWL") for p in pairs]].T
        data[1::2] = x[:, [clab.index(p + "highWL") for p in pairs]].T
        wl = cnt.get("wavelengths", TUBERLIN_WAVELENGTHS) if isinstance(cnt, dict) else TUBERLIN_WAVELENGTHS
        wls = tuple(float(w) for w in np.asarray(wl).ravel()[:2])
        kinds = ("fnirs_cw_amplitude", "fnirs_cw_amplitude")
    sd = _tuberlin_sd(mnt, pairs, set(sites), path)
    src_ids: dict[str, int] = {}
    det_ids: dict[str, int] = {}
    names, locs = [], []
    for (s, d) in sd:
        si = src_ids.setdefault(s, len(src_ids) + 1)
        di = det_ids.setdefault(d, len(det_ids) + 1)
        for j in range(2):
            names.append(f"S{si}_D{di} " + (f"{int(wls[j])}" if kinds[0] == "fnirs_cw_amplitude" else kinds[j]))
            loc = np.zeros(12)
            loc[3:6], loc[6:9] = sites[s], sites[d]
            loc[:3] = (loc[3:6] + loc[6:9]) / 2
            loc[9] = wls[j]
            locs.append(loc)
    info = mne.create_info(names, fs, [kinds[j % 2] for j in range(len(names))])
    for ch, loc in zip(info["chs"], locs):
        ch["loc"][:] = loc
    return mne.io.RawArray(data, info, verbose="error")


def _tuberlin_sd(mnt: Any, pairs: list[str], sites: set[str], path: Path) -> list[tuple[str, str]]:
    if isinstance(mnt, dict) and {"sd", "source", "detector"} <= set(mnt):
        sd = np.atleast_2d(np.asarray(mnt["sd"], dtype=int))
        src = _strings(_need(mnt["source"], "clab", path, "mnt.source"))
        det = _strings(_need(mnt["detector"], "clab", path, "mnt.detector"))
        if sd.shape != (len(pairs), 2) or sd.min() < 1 or sd[:, 0].max() > len(src) or sd[:, 1].max() > len(det):
            raise PhysioInputError(f"TU Berlin file {path}: mnt.sd must be ({len(pairs)}, 2) 1-based indices into "
                                   f"mnt.source.clab ({len(src)}) and mnt.detector.clab ({len(det)})")  # fmt: skip
        out = [(src[a - 1], det[b - 1]) for a, b in sd]
    else:
        out = []
        for p in pairs:
            split = _split_sites(p, sites)
            if split is None:
                raise PhysioInputError(f"TU Berlin file {path}: NIRS channel '{p}' does not name two 10-05 sites "
                                       "(e.g. 'AF7Fp1'), and no mnt.mat with sd/source/detector is next to it")  # fmt: skip
            out.append(split)
    low = {s.lower(): s for s in sites}
    bad = [x for pair in out for x in pair if x.lower() not in low]
    if bad:
        raise PhysioInputError(f"TU Berlin file {path}: optode site '{bad[0]}' is not a 10-05 site name")
    return [(low[a.lower()], low[b.lower()]) for a, b in out]


def _tuberlin_annotations(mrk: Any, path: Path, sfreq: float, t_end: float):
    import mne

    t = np.asarray(_need(mrk, "time", path, "mrk"), dtype=float).ravel() / 1000.0
    if "y" in mrk and "className" in mrk:
        y = np.atleast_2d(np.asarray(mrk["y"], dtype=float))
        names = _strings(mrk["className"])
        if y.shape != (len(names), len(t)):
            raise PhysioInputError(f"TU Berlin file {path}: mrk.y has shape {y.shape}, expected ({len(names)} "
                                   f"classes, {len(t)} markers)")  # fmt: skip
        desc = [names[int(np.argmax(y[:, i]))] for i in range(len(t))]
    elif "event" in mrk and isinstance(mrk["event"], dict) and "desc" in mrk["event"]:
        desc = [str(int(v)) for v in np.asarray(mrk["event"]["desc"]).ravel()]
    else:
        raise PhysioInputError(f"TU Berlin file {path}: mrk needs 'y' + 'className' or 'event.desc' for the markers")
    if len(desc) != len(t) or np.any(~np.isfinite(t)) or np.any(t < 0):
        raise PhysioInputError(f"TU Berlin file {path}: mrk.time must hold one non-negative time (ms) per marker")
    return mne.Annotations(t, np.zeros(len(t)), desc)


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
            raise PhysioInputError(f"BIDS data set {root}: not readable by mne-bids ({_first_line(e)})") from e
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
