"""Issue 21: every reader on a tiny fixture written here in its native format (never downloaded): round trip of data,
channel types, sampling rate and events; a broken file is a one-line error naming it; ``mmib physio preprocess``
accepts each format end to end."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from mmib.cli import main
from mmib.data.physio.preprocess import PhysioInputError, read_eeg, read_fnirs

EEG_CH = ["Fz", "Cz", "Pz"]
EEG_SF = 128.0
EEG_S = 40.0
TRIALS = [(5.0, "left"), (13.5, "right"), (21.0, "left"), (29.25, "right")]
NIRS_SF = 10.0
NIRS_S = 400.0  # the 0.01 Hz high-pass of the default fNIRS path needs ~330 s
NIRS_TRIALS = [(40.0 + 30.0 * i, "left" if i % 2 == 0 else "right") for i in range(11)]


def _eeg_data(seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 20e-6, (len(EEG_CH), int(EEG_S * EEG_SF)))  # volts


def _intensity(n_pairs: int, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(NIRS_S * NIRS_SF)
    return 1.0 + 0.01 * rng.standard_normal((2 * n_pairs, n))  # positive light intensities


def _assert_events(raw, trials, tol):
    from mmib.data.physio.preprocess_events import trial_conditions

    keep = set(trial_conditions(raw))
    desc = [d for d in raw.annotations.description if d in keep]
    on = [o for o, d in zip(raw.annotations.onset, raw.annotations.description) if d in desc]
    assert desc == [d for _, d in trials]
    np.testing.assert_allclose(on, [t for t, _ in trials], atol=tol)


def _preprocess_ok(tmp_path, opt, path, n_epochs, *extra):
    out = tmp_path / f"out_{Path(path).name.replace('.', '_')}.npz"
    code = main(["physio", "preprocess", opt, str(path), "--out", str(out), *extra])
    assert code == 0
    d = np.load(out)
    assert len(d["y"]) == n_epochs and np.isfinite(d["fnirs" if opt == "--fnirs" else "eeg"]).all()
    return d


# ---------------------------------------------------------------------------------------------------- EEG writers
def _mne_eeg_raw():
    import mne

    raw = mne.io.RawArray(_eeg_data(), mne.create_info(EEG_CH, EEG_SF, "eeg"), verbose="error")
    raw.set_annotations(mne.Annotations([t for t, _ in TRIALS], [0.0] * len(TRIALS), [d for _, d in TRIALS]))
    return raw


def write_brainvision(folder: Path) -> Path:
    """BrainVision: text header .vhdr, marker file .vmrk, float32 multiplexed .eeg (BrainVision Core Data Format 1.0)."""
    x = (_eeg_data() * 1e6).astype("<f4")  # µV
    (folder / "rec.eeg").write_bytes(x.T.tobytes())
    chans = "\n".join(f"Ch{i + 1}={c},,1,µV" for i, c in enumerate(EEG_CH))
    (folder / "rec.vhdr").write_text(
        "Brain Vision Data Exchange Header File Version 1.0\n\n[Common Infos]\nCodepage=UTF-8\nDataFile=rec.eeg\n"
        f"MarkerFile=rec.vmrk\nDataFormat=BINARY\nDataOrientation=MULTIPLEXED\nNumberOfChannels={len(EEG_CH)}\n"
        f"SamplingInterval={1e6 / EEG_SF}\n\n[Binary Infos]\nBinaryFormat=IEEE_FLOAT_32\n\n[Channel Infos]\n{chans}\n",
        encoding="utf-8",
    )
    marks = "\n".join(f"Mk{i + 2}=Stimulus,{d},{int(round(t * EEG_SF)) + 1},1,0" for i, (t, d) in enumerate(TRIALS))
    (folder / "rec.vmrk").write_text(
        "Brain Vision Data Exchange Marker File, Version 1.0\n\n[Common Infos]\nCodepage=UTF-8\nDataFile=rec.eeg\n\n"
        f"[Marker Infos]\nMk1=New Segment,,1,1,0,20240101000000000000\n{marks}\n",
        encoding="utf-8",
    )  # fmt: skip
    return folder / "rec.vhdr"


def write_eeglab(folder: Path, fdt: bool = False) -> Path:
    """EEGLAB .set: a MATLAB file holding the EEG struct (data in the file, events with 1-based latencies); with
    ``fdt`` the data go to a separate rec.fdt (float32, MATLAB's column order: channel fastest) that EEG.data names."""
    from scipy.io import savemat

    x = (_eeg_data() * 1e6).astype(np.float32)
    chanlocs = np.array([(c,) for c in EEG_CH], dtype=[("labels", object)])
    event = np.array([(d, float(round(t * EEG_SF)) + 1.0, 0.0) for t, d in TRIALS],
                     dtype=[("type", object), ("latency", float), ("duration", float)])  # fmt: skip
    eeg = {"setname": "rec", "nbchan": float(len(EEG_CH)), "trials": 1.0, "pnts": float(x.shape[1]),
           "srate": EEG_SF, "xmin": 0.0, "xmax": (x.shape[1] - 1) / EEG_SF, "data": x, "chanlocs": chanlocs,
           "event": event, "epoch": np.zeros((0, 0)), "ref": "common", "icawinv": np.zeros((0, 0))}  # fmt: skip
    if fdt:
        x.T.astype("<f4").tofile(folder / "rec.fdt")
        eeg["data"] = "rec.fdt"
    savemat(folder / "rec.set", {"EEG": eeg}, appendmat=False)
    return folder / "rec.set"


def write_edf_like(folder: Path, fmt: str) -> Path:
    from mmib.data.physio.io import write_eeg

    return write_eeg(_mne_eeg_raw(), folder / f"rec.{fmt}")


EEG_FORMATS = {
    "edf": lambda f: write_edf_like(f, "edf"),
    "bdf": lambda f: write_edf_like(f, "bdf"),
    "fif": lambda f: write_edf_like(f, "fif"),
    "brainvision": write_brainvision,
    "eeglab": write_eeglab,
    "eeglab_fdt": lambda f: write_eeglab(f, fdt=True),
}
EEG_TOL = {"edf": 2e-8, "bdf": 1e-9, "fif": 1e-12, "brainvision": 1e-9, "eeglab": 1e-9, "eeglab_fdt": 1e-9}  # V


@pytest.mark.parametrize("fmt", sorted(EEG_FORMATS))
def test_eeg_format_round_trip_and_preprocess(tmp_path, fmt):
    path = EEG_FORMATS[fmt](tmp_path)
    raw = read_eeg(path)
    assert raw.ch_names[:3] == EEG_CH and set(raw.get_channel_types(picks=EEG_CH)) == {"eeg"}
    assert raw.info["sfreq"] == EEG_SF and raw.n_times == int(EEG_S * EEG_SF)
    np.testing.assert_allclose(raw.get_data(picks=EEG_CH), _eeg_data(), atol=EEG_TOL[fmt])
    trials = [(t, f"Stimulus/{d}" if fmt == "brainvision" else d) for t, d in TRIALS]
    _assert_events(raw, trials, 1.0 / EEG_SF)
    _preprocess_ok(tmp_path, "--eeg", path, len(TRIALS), "--eeg-window", "-0.5", "3")


# ---------------------------------------------------------------------------------------------------- fNIRS writers
def write_nirx(folder: Path) -> Path:
    """A NIRScout (NIRStar 15.2) folder: .hdr .inf .set .tpl .wl1 .wl2 .evt .dat config.txt probeInfo.mat."""
    from scipy.io import savemat

    rec = folder / "rec_nirs"
    rec.mkdir()
    x = _intensity(2)
    keys = "1-1:1,1-2:2,2-1:3,2-2:4,"  # every source-detector combination; the probe requests S1-D1 and S2-D2
    (rec / "NIRS.hdr").write_text(
        '[GeneralInfo]\nFileName="NIRS"\nDate="Mon, Jan 01, 2024"\nTime="12:00:00.000"\nDevice="NIRScout 8x8"\n'
        'Source="NIRx"\nMod="Human Subject"\nNIRStar="15.2"\nSubject=1\n\n'
        f'[ImagingParameters]\nSources=2\nDetectors=2\nSteps=2\nWavelengths="760\t850"\nTrigIns=4\nTrigOuts=0\n'
        f"AnIns=0\nSamplingRate={NIRS_SF:.6f}\n\n"
        '[Paradigm]\nStimulusType="None"\n\n[DataStructure]\n'
        f'S-D-Key="{keys}"\nS-D-Mask="#\n1\t0\n0\t1\n#"\n',
        encoding="latin-1",
    )  # fmt: skip
    (rec / "NIRS.inf").write_text('[Subject Demographics]\nName="Test"\nAge=30\nGender="M"\n')
    for ext in ("set", "tpl", "dat"):
        (rec / f"NIRS.{ext}").write_text("0\n")
    (rec / "NIRS_config.txt").write_text("Sources=2\nDetectors=2\n")
    n = x.shape[1]
    # wl files hold every S-D combination (4 columns); requested pairs: column 0 (S1-D1) and 3 (S2-D2)
    for w, key in ((0, "wl1"), (1, "wl2")):
        cols = np.stack([x[w], np.ones(n), np.ones(n), x[2 + w]], axis=1)
        (rec / f"NIRS.{key}").write_text("\n".join(" ".join(f"{v:.9f}" for v in row) for row in cols) + "\n")
    codes = {"left": 1, "right": 2}
    (rec / "NIRS.evt").write_text("".join(
        f"{int(round(t * NIRS_SF))}\t" + "\t".join(str((codes[d] >> b) & 1) for b in range(8)) + "\n"
        for t, d in NIRS_TRIALS))  # fmt: skip
    src = np.array([[-3.0, 0.0, 7.0], [3.0, 0.0, 7.0]])  # MNI, cm
    det = np.array([[-3.0, 3.0, 7.0], [3.0, 3.0, 7.0]])
    probes = {"index_c": np.array([[1.0, 1.0], [2.0, 2.0]]), "coords_s3": src, "coords_d3": det,
              "coords_c3": (src + det) / 2}  # fmt: skip
    savemat(rec / "NIRS_probeInfo.mat", {"probeInfo": {"probes": probes}})
    return rec


HITACHI_WL = (695, 830)


def write_hitachi(folder: Path) -> Path:
    """A Hitachi ETG-7000 (3x5, 22 channels) continuous-mode export .csv with a Mark column."""
    n_pairs = 22
    x = _intensity(n_pairs)
    names = [f"CH{c + 1}({wl + 0.5 * (c % 3)})" for c in range(n_pairs) for wl in HITACHI_WL]
    mark = np.zeros(x.shape[1], int)
    codes = {"left": 1, "right": 2}
    for t, d in NIRS_TRIALS:
        i = int(round(t * NIRS_SF))
        mark[i : i + 5] = codes[d]
    head = ["Header,,,", "File Version,1.25,", "Patient Information,", "ID,sub01", "Name,", "Comment,", "Age,30y",
            "Sex,Male", "Analyze Information,", "AnalyzeMode,Continuous,", "Measure Information,",
            "Date,1/1/24 12:00,", "Probe Type,adult,", "Mode,3x5,", f"Wave[nm],{HITACHI_WL[0]},{HITACHI_WL[1]}",
            "Wave Length," + ",".join(names), f"Sampling Period[s],{1 / NIRS_SF},", "StimType,STIM,",
            "Repeat Count,10,", "Exception Ch," + ",".join(["0"] * n_pairs), "Data,",
            "Probe1," + ",".join(names) + ",Mark,Time,BodyMovement,RemovalMark,PreScan"]  # fmt: skip
    t0 = dt.datetime(2024, 1, 1, 12, 0, 0)
    rows = []
    for i in range(x.shape[1]):
        tm = (t0 + dt.timedelta(seconds=i / NIRS_SF)).strftime("%H:%M:%S.%f")[:-4]
        rows.append(f"{i + 1}," + ",".join(f"{v:.6f}" for v in x[:, i]) + f",{mark[i]},{tm},0,0,0")
    path = folder / "rec_nirs.csv"
    path.write_text("\r\n".join(head + rows) + "\r\n", encoding="latin-1")
    return path


def write_snirf(folder: Path) -> Path:
    import mne

    from mmib.data.physio.eeg_fnirs_sim import EEGFNIRSSimConfig
    from mmib.data.physio.fnirs_forward import fnirs_raw_info
    from mmib.data.physio.io import write_fnirs

    info = fnirs_raw_info(EEGFNIRSSimConfig(n_fnirs_channels=2, fnirs_sfreq=NIRS_SF))
    raw = mne.io.RawArray(_intensity(2), info, verbose="error")
    raw.set_meas_date(dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc))
    raw.set_annotations(mne.Annotations([t for t, _ in NIRS_TRIALS], [0.0] * len(NIRS_TRIALS),
                                        [d for _, d in NIRS_TRIALS]))  # fmt: skip
    return write_fnirs(raw, folder / "rec_nirs.snirf")


FNIRS_FORMATS = {"nirx": write_nirx, "hitachi": write_hitachi, "snirf": write_snirf}


def _nirx_desc(d):
    return {"left": "1.0", "right": "2.0"}[d]


@pytest.mark.parametrize("fmt", sorted(FNIRS_FORMATS))
def test_fnirs_format_round_trip_and_preprocess(tmp_path, fmt):
    from mne.preprocessing.nirs import source_detector_distances

    path = FNIRS_FORMATS[fmt](tmp_path)
    raw = read_fnirs(path)
    n_pairs = {"nirx": 2, "hitachi": 22, "snirf": 2}[fmt]
    assert set(raw.get_channel_types()) == {"fnirs_cw_amplitude"} and len(raw.ch_names) == 2 * n_pairs
    assert raw.info["sfreq"] == pytest.approx(NIRS_SF) and raw.n_times == int(NIRS_S * NIRS_SF)
    np.testing.assert_allclose(raw.get_data(), _intensity(n_pairs), rtol=1e-5)
    dist = source_detector_distances(raw.info)
    assert np.all(np.isfinite(dist)) and np.all((dist > 0.02) & (dist < 0.045)), dist
    trials = [(t, _nirx_desc(d) if fmt == "nirx" else {"left": "1", "right": "2"}[d] if fmt == "hitachi" else d)
              for t, d in NIRS_TRIALS]  # fmt: skip
    _assert_events(raw, trials, 1.0 / NIRS_SF)
    _preprocess_ok(tmp_path, "--fnirs", path, len(NIRS_TRIALS))


# ---------------------------------------------------------------------------------------------------- TU Berlin
def write_tuberlin(folder: Path, sessions: int = 1) -> tuple[Path, Path]:
    """BBCI-toolbox files of the TU Berlin hybrid sets: EEG/cnt.mat + mrk.mat + mnt.mat, NIRS/cnt.mat + mrk.mat."""
    from scipy.io import savemat

    eeg_dir, nirs_dir = folder / "EEG" / "subject 01", folder / "NIRS" / "subject 01"
    eeg_dir.mkdir(parents=True)
    nirs_dir.mkdir(parents=True)
    clab = np.array(EEG_CH + ["VEOG"], dtype=object)
    x = np.vstack([_eeg_data(), _eeg_data(1)[:1]]).T * 1e6  # samples × channels, µV
    eeg_cnt = {"x": x, "fs": EEG_SF, "clab": clab, "title": "MI", "yUnit": "uV"}
    nirs_pairs = ["AF7Fp1", "C3FC3"]
    nclab = np.array([p + s for s in ("lowWL", "highWL") for p in nirs_pairs], dtype=object)
    ix = _intensity(2)
    nx = np.stack([ix[0], ix[2], ix[1], ix[3]], axis=1)  # lowWL of both pairs, then highWL
    nirs_cnt = {"x": nx, "fs": NIRS_SF, "clab": nclab, "title": "MI"}

    def mrk(trials):
        classes = ["left", "right"]
        y = np.array([[float(d == c) for _, d in trials] for c in classes])
        return {"time": np.array([t * 1000.0 for t, _ in trials]), "y": y,
                "className": np.array(classes, dtype=object)}  # fmt: skip

    def cells(s):
        if sessions == 1:
            return s
        arr = np.empty((1, sessions), dtype=object)
        for i in range(sessions):
            arr[0, i] = s
        return arr

    savemat(eeg_dir / "cnt.mat", {"cnt": cells(eeg_cnt)})
    savemat(eeg_dir / "mrk.mat", {"mrk": cells(mrk(TRIALS))})
    savemat(eeg_dir / "mnt.mat", {"mnt": {"clab": clab}})
    savemat(nirs_dir / "cnt.mat", {"cnt": cells(nirs_cnt)})
    savemat(nirs_dir / "mrk.mat", {"mrk": cells(mrk(NIRS_TRIALS))})
    return eeg_dir / "cnt.mat", nirs_dir / "cnt.mat"


def test_tuberlin_round_trip_and_preprocess(tmp_path):
    from mne.preprocessing.nirs import source_detector_distances

    eeg_mat, nirs_mat = write_tuberlin(tmp_path)
    eeg = read_eeg(eeg_mat)
    assert eeg.ch_names == EEG_CH + ["VEOG"] and eeg.get_channel_types() == ["eeg"] * 3 + ["eog"]
    assert eeg.info["sfreq"] == EEG_SF
    np.testing.assert_allclose(eeg.get_data(picks=EEG_CH), _eeg_data(), rtol=1e-12)
    _assert_events(eeg, TRIALS, 1e-9)
    nirs = read_fnirs(nirs_mat)
    assert nirs.ch_names == ["S1_D1 760", "S1_D1 850", "S2_D2 760", "S2_D2 850"]
    assert nirs.info["sfreq"] == NIRS_SF and set(nirs.get_channel_types()) == {"fnirs_cw_amplitude"}
    np.testing.assert_allclose(nirs.get_data(), _intensity(2), rtol=1e-12)
    d = source_detector_distances(nirs.info)
    assert np.all((d > 0.015) & (d < 0.05)), d  # AF7-Fp1, C3-FC3 on the 10-05 template
    _assert_events(nirs, NIRS_TRIALS, 1e-9)
    _preprocess_ok(tmp_path, "--eeg", eeg_mat, len(TRIALS), "--eeg-window", "-0.5", "3")
    _preprocess_ok(tmp_path, "--fnirs", nirs_mat, len(NIRS_TRIALS))


def test_tuberlin_sessions_concatenate_or_select(tmp_path):
    from mmib.data.physio.tuberlin import read_tuberlin

    eeg_mat, _ = write_tuberlin(tmp_path, sessions=2)
    both = read_tuberlin(eeg_mat, "eeg")
    assert both.n_times == 2 * int(EEG_S * EEG_SF)
    assert [d for d in both.annotations.description if d in ("left", "right")] == [d for _, d in TRIALS] * 2
    one = read_tuberlin(eeg_mat, "eeg", session=1)
    assert one.n_times == int(EEG_S * EEG_SF)
    with pytest.raises(PhysioInputError, match="session 2 out of range"):
        read_tuberlin(eeg_mat, "eeg", session=2)


# ---------------------------------------------------------------------------------------------------- BIDS
def test_bids_eeg_and_nirs_through_mne_bids(tmp_path):
    pytest.importorskip("mne_bids")
    import mne
    from mne_bids import BIDSPath, write_raw_bids

    root = tmp_path / "bids"
    src = tmp_path / "src"
    src.mkdir()
    edf = write_edf_like(src, "edf")
    snirf = write_snirf(src)
    for sub in ("01", "02"):
        eeg = mne.io.read_raw_edf(edf, verbose="error")
        eeg.set_meas_date(dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc))
        write_raw_bids(eeg, BIDSPath(subject=sub, task="mi", datatype="eeg", root=root), verbose=False)
        nirs = mne.io.read_raw_snirf(snirf, verbose="error")
        write_raw_bids(nirs, BIDSPath(subject=sub, task="mi", datatype="nirs", root=root), verbose=False)
    from mmib.data.physio import recordings as physio_recordings

    recs = physio_recordings.find_recordings(root)
    assert [r["stem"].name for r in recs] == ["sub-01_task-mi", "sub-02_task-mi"]
    from mmib.data.physio.readers import read_bids

    raw = read_bids(recs[0]["eeg"], "eeg")
    assert raw.info["sfreq"] == EEG_SF and raw.get_channel_types(picks=EEG_CH) == ["eeg"] * 3
    np.testing.assert_allclose(raw.get_data(picks=EEG_CH), _eeg_data(), atol=2e-8)
    _assert_events(raw, TRIALS, 1.0 / EEG_SF)
    nirs = read_bids(recs[0]["fnirs"], "fnirs")
    assert set(nirs.get_channel_types()) == {"fnirs_cw_amplitude"} and nirs.info["sfreq"] == NIRS_SF
    np.testing.assert_allclose(nirs.get_data(), _intensity(2), rtol=1e-6)
    _assert_events(nirs, NIRS_TRIALS, 1.0 / NIRS_SF)
    # end to end: EEG and NIRS of each subject, different trials per device (EEG 4, NIRS 11 → clock alignment
    # matches by time: the EEG's 4 triggers are not among the NIRS ones, so they cannot be paired)
    out = tmp_path / "bids.npz"
    assert main(["physio", "preprocess", str(root), "--out", str(out)]) == 2


def test_bids_end_to_end_one_modality(tmp_path):
    pytest.importorskip("mne_bids")
    import mne
    from mne_bids import BIDSPath, write_raw_bids

    root = tmp_path / "bids"
    edf = write_edf_like(tmp_path, "edf")
    for sub in ("01", "02"):
        eeg = mne.io.read_raw_edf(edf, verbose="error")
        eeg.set_meas_date(dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc))
        write_raw_bids(eeg, BIDSPath(subject=sub, task="mi", datatype="eeg", root=root), verbose=False)
    out = tmp_path / "bids.npz"
    assert main(["physio", "preprocess", str(root), "--out", str(out), "--eeg-window", "-0.5", "3"]) == 0
    d = np.load(out)
    assert d["eeg"].shape[0] == 2 * len(TRIALS) and d["groups"].tolist() == [0] * 4 + [1] * 4
    assert not any(k.startswith("latent_") for k in d)  # BIDS sample/value columns are not latents


def _write_bids_session(root: Path, tmp: Path, sub: str, offset_s: float, trials) -> None:
    """One session of a BIDS data set written by ``mne_bids.write_raw_bids``: an EEG Raw (3 channels, EDF) with
    ``trials`` as annotations on the EEG clock, and an fNIRS Raw (2 pairs, SNIRF) holding the same triggers on a
    clock ``offset_s`` ahead (``t_nirs = t_eeg + offset_s``)."""
    import mne
    from mne_bids import BIDSPath, write_raw_bids

    from mmib.data.physio.eeg_fnirs_sim import EEGFNIRSSimConfig
    from mmib.data.physio.fnirs_forward import fnirs_raw_info
    from mmib.data.physio.io import write_fnirs

    date = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    on, desc = [t for t, _ in trials], [d for _, d in trials]
    n_eeg = int(np.ceil(max(on) + 6.0) * EEG_SF)  # whole seconds: EDF's 1 s data records, no padding
    eeg = mne.io.RawArray(np.random.default_rng(int(sub)).normal(0, 20e-6, (len(EEG_CH), n_eeg)),
                          mne.create_info(EEG_CH, EEG_SF, "eeg"), verbose="error")  # fmt: skip
    eeg.set_meas_date(date)
    eeg.set_annotations(mne.Annotations(on, [0.0] * len(on), desc))
    write_raw_bids(eeg, BIDSPath(subject=sub, task="mi", datatype="eeg", root=root), allow_preload=True,
                   format="EDF", verbose=False)  # fmt: skip
    info = fnirs_raw_info(EEGFNIRSSimConfig(n_fnirs_channels=2, fnirs_sfreq=NIRS_SF))
    nirs = mne.io.RawArray(_intensity(2, seed=int(sub)), info, verbose="error")
    nirs.set_meas_date(date)
    nirs.set_annotations(mne.Annotations([t + offset_s for t in on], [0.0] * len(on), desc))
    snirf = write_fnirs(nirs, tmp / f"sub{sub}_nirs.snirf")  # mne-bids copies NIRS files (no conversion)
    write_raw_bids(mne.io.read_raw_snirf(snirf, verbose="error"),
                   BIDSPath(subject=sub, task="mi", datatype="nirs", root=root), verbose=False)  # fmt: skip


def test_bids_eeg_and_nirs_paired_by_clock_alignment(tmp_path):
    """A BIDS data set with an EEG and a NIRS recording of each session, the NIRS clock offset by seconds: the
    CLI pairs every trial, and OUT.json's clock fit recovers each session's offset to within one fNIRS sample."""
    pytest.importorskip("mne_bids")
    import json

    rng = np.random.default_rng(21)
    # 10 triggers on the EEG clock at irregular intervals (periodic ones would be ambiguous), 30 s to ≤ 300 s
    onsets = 30.0 + np.r_[0.0, np.cumsum(rng.uniform(18.0, 30.0, 9))]
    labels = rng.permutation(["left"] * 5 + ["right"] * 5)
    trials = [(round(float(t) * EEG_SF) / EEG_SF, str(d)) for t, d in zip(onsets, labels)]
    offsets = {"01": 12.34, "02": -3.7}  # NIRS started before / after the EEG
    root = tmp_path / "bids"
    for sub, off in offsets.items():
        _write_bids_session(root, tmp_path, sub, off, trials)
    assert max(onsets) + max(offsets.values()) + 18.0 < NIRS_S  # every fNIRS epoch fits in the recording
    out = tmp_path / "paired.npz"
    assert main(["physio", "preprocess", str(root), "--out", str(out)]) == 0
    d = np.load(out)
    n = len(trials)
    assert d["eeg"].shape[0] == d["fnirs"].shape[0] == 2 * n
    assert np.isfinite(d["eeg"]).all() and np.isfinite(d["fnirs"]).all()
    expected_y = [sorted({"left", "right"}).index(lab) for _, lab in trials]
    assert d["y"].tolist() == expected_y * 2 and d["groups"].tolist() == [0] * n + [1] * n
    meta = json.loads(str(d["meta"]))
    assert set(meta["modalities"]) == {"eeg", "fnirs"} and meta["groups"] == "subject"
    side = json.loads(out.with_suffix(".json").read_text())
    assert [r["stem"].rsplit("/", 1)[-1] for r in side["recordings"]] == ["sub-01_task-mi", "sub-02_task-mi"]
    for rec, off in zip(side["recordings"], offsets.values()):
        al = rec["clock_alignment"]
        assert rec["n_epochs"] == n and al is not None
        assert al["n_matched"] == n and al["unmatched_a"] == [] and al["unmatched_b"] == []
        assert abs(al["offset_s"] - off) <= 1.0 / NIRS_SF, (al, off)
        assert abs(al["drift_ppm"]) < 500.0, al  # fNIRS triggers snap to its 10 Hz samples: no real drift


# ---------------------------------------------------------------------------------------------------- bad files
def _corrupt(path: Path) -> Path:
    if path.is_dir():  # NIRx: break the header
        hdr = next(path.glob("*.hdr"))
        hdr.write_text(hdr.read_text(encoding="latin-1").replace('NIRStar="15.2"', 'NIRStar="9.9"'))
        return path
    data = bytearray(path.read_bytes())
    data[: min(len(data), 300)] = b"\x00\xff" * (min(len(data), 300) // 2)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("fmt", sorted(EEG_FORMATS) + sorted(FNIRS_FORMATS) + ["tuberlin"])
def test_bad_file_is_one_line_error_naming_it(tmp_path, capsys, fmt):
    if fmt in EEG_FORMATS:
        path, opt = EEG_FORMATS[fmt](tmp_path), "--eeg"
        if fmt == "brainvision":
            path.write_text("not a header\n")
    elif fmt in FNIRS_FORMATS:
        path, opt = FNIRS_FORMATS[fmt](tmp_path), "--fnirs"
    else:
        path, opt = write_tuberlin(tmp_path)[1], "--fnirs"
    if fmt != "brainvision":
        _corrupt(path)
    reader = read_eeg if opt == "--eeg" else read_fnirs
    with pytest.raises(PhysioInputError) as e:
        reader(path)
    assert str(path) in str(e.value) and len(str(e.value).splitlines()) == 1
    assert main(["physio", "preprocess", opt, str(path), "--out", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err, err
    assert not (tmp_path / "o.npz").exists()


def test_tuberlin_missing_markers_and_bad_labels_are_named(tmp_path):
    from scipy.io import savemat

    eeg_mat, nirs_mat = write_tuberlin(tmp_path)
    (eeg_mat.parent / "mrk.mat").unlink()
    with pytest.raises(PhysioInputError, match=r"markers mrk\.mat are missing"):
        read_eeg(eeg_mat)
    savemat(nirs_mat, {"cnt": {"x": np.ones((10, 2)), "fs": 10.0,
                               "clab": np.array(["XXlowWL", "XXhighWL"], dtype=object)}})  # fmt: skip
    with pytest.raises(PhysioInputError, match="'XX' does not name two 10-05 sites"):
        read_fnirs(nirs_mat)
    savemat(nirs_mat, {"data": np.ones(3)})
    with pytest.raises(PhysioInputError, match="expected one variable named 'cnt'"):
        read_fnirs(nirs_mat)


def test_mat_files_never_execute_code(tmp_path):
    """A malformed .mat is refused with its name (pymatreader reads data only; nothing in it is run)."""
    bad = tmp_path / "cnt.mat"
    bad.write_bytes(b"MATLAB 5.0 MAT-file" + b"\x00" * 200)
    with pytest.raises(PhysioInputError, match=str(bad)):
        read_eeg(bad)
