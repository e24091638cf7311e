"""The TU Berlin hybrid EEG + fNIRS data sets (Shin et al. 2016, 2018): BBCI toolbox structs ``cnt``, ``mrk``,
``mnt`` in ``.mat`` files, read as data with :mod:`pymatreader` (nothing in a file is executed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from mmib.data.physio.read_base import TUBERLIN_WAVELENGTHS, PhysioInputError, first_line


def _load_mat(path: Path) -> dict[str, Any]:
    from mmib.utils.deps import require

    require("pymatreader", "physio", f"reading {path.name} (MATLAB)")
    from pymatreader import read_mat

    try:
        return read_mat(str(path))
    except Exception as e:  # noqa: BLE001
        raise PhysioInputError(f"MATLAB file {path}: not readable ({first_line(e)})") from e


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
        y = np.asarray(mrk["y"], dtype=float)
        names = _strings(mrk["className"])
        if y.ndim < 2:  # MATLAB readers squeeze (classes, 1) and (1, markers) alike: one marker, or one class
            y = y.reshape(-1, 1) if len(t) == 1 else np.atleast_2d(y)
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
