"""Files: simulated recordings to EDF + SNIRF (+ a BIDS-like events table), and the data shipped in pyphysio.

Writers: EDF through :func:`mne.export.export_raw` (needs the ``edfio`` package), SNIRF through
:func:`mne_nirs.io.write_raw_snirf`, FIF natively. The per-trial ground truth goes to ``<stem>_events.tsv``
(columns ``onset``, ``duration``, ``trial_type`` and one per latent), read back by :func:`read_events_tsv`.

pyphysio's ``test_data`` (GPL; never imported here, its files are read by path with ``h5py`` / ``numpy``):
``fnirs.ph`` (netCDF4/HDF5: ``signal`` (time, channel, wavelength) raw intensities at 760/850 nm, 10.17 Hz,
optode positions in cm as attributes) with ``fnirs_tapping.ph`` (0/1 finger-tapping indicator), and
``medical.txt.bz2`` (ECG, EDA, BVP, respiration; 4 tab-separated columns).
"""

from __future__ import annotations

import csv
import importlib.util
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmib.data.physio.preprocess import PhysioInputError

# ---------------------------------------------------------------------------------------------------- writers


def write_eeg(raw, path: str | Path, overwrite: bool = True) -> Path:
    """Write an EEG Raw as EDF/BDF (``mne.export``; EDF needs ``edfio``) or FIF, by the extension of ``path``."""
    import mne

    from mmib.utils.deps import require

    path = Path(path)
    ext = path.suffix.lower()
    if ext in (".edf", ".bdf"):
        require("edfio", "physio", f"writing {path.name} (EDF/BDF export)")
        mne.export.export_raw(path, raw, fmt=ext[1:], overwrite=overwrite, verbose="error")
    elif ext == ".fif" or path.name.endswith(".fif.gz"):
        raw.save(path, overwrite=overwrite, verbose="error")
    else:
        raise PhysioInputError(f"EEG output {path}: unsupported extension '{ext}'; use .edf, .bdf or .fif")
    return path


def write_fnirs(raw, path: str | Path, overwrite: bool = True) -> Path:
    """Write an fNIRS Raw as SNIRF (``mne_nirs.io.write_raw_snirf``) or FIF, by the extension of ``path``."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".snirf":
        from mne_nirs.io import write_raw_snirf

        if not raw.info.get("subject_info"):  # mne-nirs' writer needs one
            raw = raw.copy()
            raw.info["subject_info"] = {"his_id": path.stem}
        if path.exists():
            if not overwrite:
                raise FileExistsError(f"{path} exists")
            path.unlink()
        write_raw_snirf(raw, str(path))
    elif ext == ".fif" or path.name.endswith(".fif.gz"):
        raw.save(path, overwrite=overwrite, verbose="error")
    else:
        raise PhysioInputError(f"fNIRS output {path}: unsupported extension '{ext}'; use .snirf or .fif")
    return path


def write_events_tsv(path: str | Path, onsets, descriptions, columns: Mapping[str, Sequence[Any]]) -> Path:
    """A BIDS-like ``events.tsv``: ``onset``, ``duration`` (0), ``trial_type`` and one column per entry of ``columns``."""
    path = Path(path)
    n = len(onsets)
    for k, v in columns.items():
        if len(v) != n:
            raise ValueError(f"events table {path}: column '{k}' has {len(v)} rows, expected {n}")
    with path.open("w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["onset", "duration", "trial_type", *columns])
        for i in range(n):
            row = [f"{float(onsets[i]):.6f}", "0", descriptions[i]]
            for v in columns.values():
                x = v[i]
                row.append("n/a" if isinstance(x, float) and not np.isfinite(x) else repr(x.item() if hasattr(x, "item") else x))
            w.writerow(row)
    return path


def read_events_tsv(path: str | Path) -> dict[str, np.ndarray]:
    """Read an events table written by :func:`write_events_tsv` (numeric columns as float/int arrays).

    Raises:
        FileNotFoundError / PhysioInputError: for a missing file, or one without an ``onset`` column.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"events table {path} does not exist")
    with path.open(newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    if not rows or "onset" not in rows[0]:
        raise PhysioInputError(f"events table {path}: expected a tab-separated header with an 'onset' column")
    header, body = rows[0], rows[1:]
    out: dict[str, np.ndarray] = {}
    for j, name in enumerate(header):
        col = [r[j] if j < len(r) else "n/a" for r in body]
        if name == "trial_type":
            out[name] = np.array(col)
            continue
        vals = [np.nan if c in ("n/a", "") else float(c) for c in col]
        arr = np.array(vals, dtype=float)
        if np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)) and all("." not in c for c in col):
            arr = arr.astype(np.int64)
        out[name] = arr
    return out


def write_simulation(subjects, out_dir: str | Path, config: Mapping[str, Any] | None = None,
                     eeg_format: str = "edf", fnirs_format: str = "snirf") -> list[dict[str, str]]:  # fmt: skip
    """Write simulated subjects as ``sub-XX_eeg.<eeg_format>``, ``sub-XX_nirs.<fnirs_format>``, ``sub-XX_events.tsv``.

    Also writes ``simulation.json`` (config, subject-level parameters, fNIRS channel weights, file list).

    Returns:
        One ``{"subject", "eeg", "fnirs", "events"}`` dict of file names per subject.
    """
    from mmib.data.physio.eeg_fnirs_sim import LATENT_NAMES

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = []
    meta_subjects = []
    for s in subjects:
        stem = f"sub-{s.subject + 1:02d}"
        eeg_f = write_eeg(s.eeg, out_dir / f"{stem}_eeg.{eeg_format}")
        nirs_f = write_fnirs(s.fnirs, out_dir / f"{stem}_nirs.{fnirs_format}")
        cols = {k: s.trials[k] for k in (*LATENT_NAMES, "A_value", "G_value", "hbo_peak_um", "hbo_peak_time")}
        cols["subject"] = np.full(len(s.trials["onset"]), s.subject)
        ev_f = write_events_tsv(out_dir / f"{stem}_events.tsv", s.trials["onset"], list(s.eeg.annotations.description), cols)
        files.append({"subject": stem, "eeg": eeg_f.name, "fnirs": nirs_f.name, "events": ev_f.name})
        meta_subjects.append(
            {"subject": stem, "params": s.params, "fnirs_channel_weights": s.fnirs_channel_weights.tolist()}
        )
    meta = {"generator": "mmib.data.physio.eeg_fnirs_sim", "config": dict(config or {}), "subjects": meta_subjects,
            "files": files}  # fmt: skip
    from mmib.utils.io import atomic_write_text

    atomic_write_text(out_dir / "simulation.json", json.dumps(meta, indent=2))  # atomic: no half-written metadata
    return files


# ---------------------------------------------------------------------------------------------------- pyphysio
def pyphysio_test_data() -> Path | None:
    """The ``test_data`` folder of an installed pyphysio (found with ``importlib``, not imported), or ``None``."""
    spec = importlib.util.find_spec("pyphysio")
    if spec is None or not spec.submodule_search_locations:
        return None
    for loc in spec.submodule_search_locations:
        p = Path(loc) / "test_data"
        if p.is_dir():
            return p
    return None


def _pyphysio_file(name: str) -> Path:
    folder = pyphysio_test_data()
    if folder is None:
        from mmib.errors import MissingDependencyError

        raise MissingDependencyError(
            f"the pyphysio data file '{name}' ships with the optional package 'pyphysio': pip install 'mmib[packaged]'"
        )
    path = folder / name
    if not path.is_file():
        from mmib.data.loaders._common import DataFileNotFoundError

        raise DataFileNotFoundError(f"the pyphysio data file '{name}' is missing: the installed package 'pyphysio' "
                                    f"has no {path} (expected in its test_data folder; reinstall pyphysio)")
    return path


def _attr(ds, name: str, path: Path) -> np.ndarray:
    if name not in ds.attrs:
        raise PhysioInputError(f"{path}: dataset 'signal' lacks the attribute '{name}' (expected pyphysio's fNIRS file)")
    return np.asarray(ds.attrs[name])


def read_pyphysio_fnirs(path: str | Path | None = None, tapping_path: str | Path | None = None):
    """pyphysio's real fNIRS recording as an MNE Raw of raw intensities, with finger-tapping annotations.

    ``fnirs.ph``: ``signal`` (time, channel, wavelength) with attributes ``Lambda`` (nm), ``sampling_freq``,
    ``SrcPos``/``DetPos`` (flattened (n, 3), cm) and ``Channels`` (flattened (n_ch, 4): index, source, detector,
    distance in cm). ``fnirs_tapping.ph``: ``signal`` 0/1 per sample; each rise 0→1 becomes a ``"tapping"``
    annotation lasting until the fall. Channel names ``S<src+1>_D<det+1> <wavelength>``; positions in metres.

    Raises:
        MissingDependencyError: when pyphysio is not installed and no path is given.
        PhysioInputError: when a file lacks an expected dataset or attribute.
    """
    import h5py
    import mne

    path = Path(path) if path is not None else _pyphysio_file("fnirs.ph")
    tapping_path = Path(tapping_path) if tapping_path is not None else path.with_name("fnirs_tapping.ph")
    with h5py.File(path, "r") as h:
        if "signal" not in h:
            raise PhysioInputError(f"{path}: no dataset 'signal' (datasets: {', '.join(h)})")
        ds = h["signal"]
        data = np.asarray(ds[()], dtype=float)
        if data.ndim != 3 or data.shape[2] != 2:
            raise PhysioInputError(f"{path}: 'signal' must be (time, channel, 2 wavelengths), got {data.shape}")
        wl = _attr(ds, "Lambda", path).astype(float)
        sfreq = float(_attr(ds, "sampling_freq", path).reshape(-1)[0])
        src = _attr(ds, "SrcPos", path).reshape(-1, 3) / 100.0
        det = _attr(ds, "DetPos", path).reshape(-1, 3) / 100.0
        chans = _attr(ds, "Channels", path).reshape(-1, 4)
        unit = ds.attrs.get("SpatialUnit", b"cm")
    if (unit.decode() if isinstance(unit, bytes) else str(unit)) != "cm":
        raise PhysioInputError(f"{path}: expected optode positions in cm, got SpatialUnit={unit!r}")
    n_t, n_ch, _ = data.shape
    if chans.shape[0] != n_ch:
        raise PhysioInputError(f"{path}: {chans.shape[0]} channel descriptions for {n_ch} channels")
    names, locs = [], []
    for c in range(n_ch):
        s, d = int(chans[c, 1]), int(chans[c, 2])
        for w in wl:
            names.append(f"S{s + 1}_D{d + 1} {int(round(w))}")
            loc = np.zeros(12)
            loc[3:6], loc[6:9], loc[0:3] = src[s], det[d], (src[s] + det[d]) / 2
            loc[9] = w
            locs.append(loc)
    info = mne.create_info(names, sfreq, ch_types="fnirs_cw_amplitude")
    for ch, loc in zip(info["chs"], locs):
        ch["loc"][:] = loc
    raw = mne.io.RawArray(data.transpose(1, 2, 0).reshape(2 * n_ch, n_t), info, verbose="error")
    if tapping_path.is_file():
        with h5py.File(tapping_path, "r") as h:
            tap = np.asarray(h["signal"][()], dtype=float).reshape(-1)
        if tap.shape[0] != n_t:
            raise PhysioInputError(f"{tapping_path}: {tap.shape[0]} samples, the fNIRS recording has {n_t}")
        on = tap > 0.5
        d = np.diff(np.r_[0, on.astype(int), 0])
        starts, stops = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
        raw.set_annotations(
            mne.Annotations(starts / sfreq, (stops - starts) / sfreq, ["tapping"] * len(starts))
        )
    return raw


PYPHYSIO_MEDICAL_COLUMNS = ("ecg", "eda", "bvp", "resp")


def read_pyphysio_medical(path: str | Path | None = None) -> dict[str, np.ndarray]:
    """pyphysio's synchronized ECG, EDA, BVP and respiration (``medical.txt.bz2``), one array per signal.

    Raises:
        MissingDependencyError: when pyphysio is not installed and no path is given.
        PhysioInputError: when the file does not hold 4 numeric tab-separated columns.
    """
    path = Path(path) if path is not None else _pyphysio_file("medical.txt.bz2")
    try:
        data = np.loadtxt(path, delimiter="\t", dtype=float)
    except ValueError as e:
        raise PhysioInputError(f"{path}: expected 4 numeric tab-separated columns (ecg, eda, bvp, resp): {e}") from e
    if data.ndim != 2 or data.shape[1] != 4:
        raise PhysioInputError(f"{path}: expected 4 columns (ecg, eda, bvp, resp), got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise PhysioInputError(f"{path}: NaN or inf in row {int(np.flatnonzero(~np.isfinite(data).all(1))[0])}")
    return {name: data[:, j].copy() for j, name in enumerate(PYPHYSIO_MEDICAL_COLUMNS)}
