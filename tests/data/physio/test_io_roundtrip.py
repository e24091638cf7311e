"""MNE round trip: simulate → EDF / SNIRF → read back → MNE / MNE-NIRS preprocessing → compare with ground truth.

Tolerances (stated in docs/guide/eeg-fnirs.md):
* exact path (no physiological nuisance, no band-pass): the HbO epochs equal the simulator's noise-free HbO within 3 %
  of the peak; the HbO peak is within 12 % (median 6 %) of the trial's amplitude A (overlap with the previous
  trial's undershoot is the rest) and its latency within 0.5 s (median 0.2 s) of t0 + tau + the HRF peak latency; HbR / HbO
  ratio within 5 % of the subject's;
* realistic path (default nuisance, 0.01-0.1 Hz band-pass): median |relative error| of the HbO peak <= 0.35, median
  signed error within ±0.25, median |latency error| <= 0.75 s, correlation >= 0.6; rest epochs' HbO peaks below a
  third of the task epochs';
* EEG: among θ α β γ, the band with the largest channel-mean relative power is the state's band in >= 90 % of the
  epochs (delta is left out: it holds the 1/f background and the task trials' ERP).
"""

from pathlib import Path

import numpy as np
import pytest

from mmib.data.physio.eeg_fnirs_sim import simulate_eeg_fnirs
from mmib.data.physio.io import read_events_tsv, write_simulation
from mmib.data.physio.preprocess import FNIRSPipeline, preprocess_recording
from mmib.data.physio.preprocess_eeg import EEGPipeline, eeg_band_powers, eeg_epochs
from mmib.data.physio.readers import read_eeg, read_fnirs


def _hbo_errors(subject, rec):
    """Per task epoch and channel: (estimated peak, true peak, estimated latency, true latency)."""
    tr = subject.trials
    task = tr["e"] == 1
    f = rec.features["fnirs"].reshape(len(rec.y), -1, 3)
    hbo = f[:, 0::2, :]  # channels alternate hbo, hbr
    est = hbo[task, :, 0]
    true = tr["hbo_peak_um"][task][:, None] * subject.fnirs_channel_weights[None, :]
    lat = hbo[task, :, 1]
    lat_true = np.broadcast_to(tr["hbo_peak_time"][task][:, None], lat.shape)
    return est.ravel(), true.ravel(), lat.ravel(), lat_true.ravel()


def test_files_preserve_signals_and_events(realistic_subjects, realistic_files):
    out, files = realistic_files
    s = realistic_subjects[0]
    eeg = read_eeg(out / files[0]["eeg"])
    nirs = read_fnirs(out / files[0]["fnirs"])
    n = s.eeg.n_times
    assert eeg.ch_names == s.eeg.ch_names and eeg.info["sfreq"] == s.eeg.info["sfreq"]
    # EDF stores 16-bit samples: the quantization step of a ±100 µV range is ~3 nV
    assert np.max(np.abs(eeg.get_data()[:, :n] - s.eeg.get_data())) < 1e-8
    np.testing.assert_allclose(nirs.get_data(), s.fnirs.get_data(), rtol=1e-6)
    from mne.preprocessing.nirs import source_detector_distances

    np.testing.assert_allclose(source_detector_distances(nirs.info), source_detector_distances(s.fnirs.info))
    for raw in (eeg, nirs):
        keep = [d in ("rest", "task") for d in raw.annotations.description]
        np.testing.assert_allclose(raw.annotations.onset[keep], s.trials["onset"], atol=1e-3)
        assert list(raw.annotations.description[keep]) == ["task" if e else "rest" for e in s.trials["e"]]
    table = read_events_tsv(out / files[0]["events"])
    np.testing.assert_array_equal(table["e"], s.trials["e"])
    np.testing.assert_allclose(table["tau"], s.trials["tau"])


def test_exact_fnirs_path_recovers_hbo_hbr(tmp_path):
    subjects = simulate_eeg_fnirs(n_subjects=1, trials_per_subject=12, seed=5, cardiac_um=0.0, respiratory_um=0.0,
                                  systemic_um=0.0, motion_rate_per_min=0.0, intensity_noise=0.0005)  # fmt: skip
    files = write_simulation(subjects, tmp_path)
    s = subjects[0]
    cfg = FNIRSPipeline(l_freq=None, h_freq=None)
    rec = preprocess_recording(None, tmp_path / files[0]["fnirs"], fnirs_cfg=cfg)
    np.testing.assert_array_equal(rec.y, s.trials["e"])
    # 1) the recovered HbO time courses equal the simulator's noise-free HbO (same epochs, same baseline)
    fs, times = rec.rates["fnirs"], rec.times["fnirs"]
    idx = np.round((s.trials["onset"][:, None] + times[None, :]) * fs).astype(int)
    clean = s.hbo_clean[:, idx].transpose(1, 0, 2)  # (epochs, pairs, times)
    clean = clean - clean[:, :, times <= 0].mean(axis=-1, keepdims=True)
    hbo = rec.signals["fnirs"][:, 0::2, :]
    assert np.max(np.abs(hbo - clean)) < 0.03 * np.max(np.abs(clean))
    # 2) the HbO peak and its latency match the per-trial amplitude A and t0 + tau + HRF peak latency (the rest of
    #    the gap is the previous trial's undershoot overlapping the epoch)
    est, true, lat, lat_true = _hbo_errors(s, rec)
    rel = (est - true) / true
    assert np.max(np.abs(rel)) < 0.12, rel
    assert np.median(np.abs(rel)) < 0.06
    assert np.max(np.abs(lat - lat_true)) <= 0.5
    assert np.median(np.abs(lat - lat_true)) <= 0.2
    f = rec.features["fnirs"].reshape(len(rec.y), -1, 3)
    task = s.trials["e"] == 1
    ratio = f[task, 1::2, 0] / f[task, 0::2, 0]  # HbR dip / HbO peak
    np.testing.assert_allclose(np.median(ratio), -s.params["hbr_ratio"], rtol=0.05)


def test_realistic_fnirs_path_within_tolerances(realistic_subjects, realistic_files):
    out, files = realistic_files
    ests, trues, lats, lat_trues, rest_peaks = [], [], [], [], []
    for s, f in zip(realistic_subjects, files):
        rec = preprocess_recording(out / f["eeg"], out / f["fnirs"], conditions=("rest", "task"))
        np.testing.assert_array_equal(rec.y, s.trials["e"])
        est, true, lat, lat_true = _hbo_errors(s, rec)
        ests.append(est), trues.append(true), lats.append(lat), lat_trues.append(lat_true)
        best = int(np.argmax(s.fnirs_channel_weights))
        feats = rec.features["fnirs"].reshape(len(rec.y), -1, 3)
        rest_peaks.append(feats[s.trials["e"] == 0, 2 * best, 0])
    est, true = np.concatenate(ests), np.concatenate(trues)
    rel = (est - true) / true
    lat_err = np.concatenate(lats) - np.concatenate(lat_trues)
    assert np.median(np.abs(rel)) <= 0.35
    assert abs(np.median(rel)) <= 0.25
    assert np.median(np.abs(lat_err)) <= 0.75
    assert np.corrcoef(est, true)[0, 1] >= 0.6
    assert np.median(np.concatenate(rest_peaks)) < np.median(true) / 3


def test_eeg_dominant_band_matches_state(realistic_subjects, realistic_files):
    out, files = realistic_files
    hits = []
    for s, f in zip(realistic_subjects, files):
        cfg = EEGPipeline()
        ep = eeg_epochs(read_eeg(out / f["eeg"]), cfg, conditions=("rest", "task"))
        _, relative, bands = eeg_band_powers(ep, cfg)
        # delta is left out: it holds the 1/f background and the ERP of task trials (and eye movements in real EEG)
        dominant = 1 + np.argmax(relative.mean(axis=1)[:, 1:], axis=1)
        state_band = np.array([bands.index(name) for name in ("alpha", "beta")])[s.trials["k"]]
        hits.append(dominant == state_band)
    assert np.mean(np.concatenate(hits)) >= 0.9


def test_multitaper_band_powers_agree_with_welch(realistic_subjects):
    s = realistic_subjects[0]
    ep = eeg_epochs(s.eeg, EEGPipeline())
    _, rel_w, _ = eeg_band_powers(ep, EEGPipeline(psd_method="welch"))
    _, rel_m, _ = eeg_band_powers(ep, EEGPipeline(psd_method="multitaper"))
    assert np.corrcoef(rel_w.ravel(), rel_m.ravel())[0, 1] > 0.9


@pytest.mark.parametrize("fmt", ["fif", "bdf"])
def test_other_eeg_formats_read_back(realistic_subjects, tmp_path, fmt):
    from mmib.data.physio.io import write_eeg

    s = realistic_subjects[0]
    eeg = s.eeg.copy().crop(0, 60)
    path = write_eeg(eeg, tmp_path / f"x_eeg.{fmt}")
    back = read_eeg(path)
    assert back.ch_names == eeg.ch_names
    np.testing.assert_allclose(back.get_data()[:, : eeg.n_times], eeg.get_data(), atol=1e-8)


def _write_brainvision(path: Path, data_v: np.ndarray, sfreq: float, ch_names, onsets_s, descriptions) -> Path:
    """A BrainVision triplet written by hand from the format's specification (Brain Products, Core Data Format 1.0):
    text header (.vhdr), text markers (.vmrk), multiplexed IEEE float32 samples in µV (.eeg) — no pybv needed."""
    stem = path.with_suffix("")
    names = {k: stem.with_suffix(k).name for k in (".vhdr", ".vmrk", ".eeg")}
    (data_v.T * 1e6).astype("<f4").tofile(stem.with_suffix(".eeg"))
    chans = "\n".join(f"Ch{i + 1}={n},,1,µV" for i, n in enumerate(ch_names))
    stem.with_suffix(".vhdr").write_text(
        "Brain Vision Data Exchange Header File Version 1.0\n\n[Common Infos]\nCodepage=UTF-8\n"
        f"DataFile={names['.eeg']}\nMarkerFile={names['.vmrk']}\nDataFormat=BINARY\nDataOrientation=MULTIPLEXED\n"
        f"NumberOfChannels={len(ch_names)}\nSamplingInterval={1e6 / sfreq:g}\n\n[Binary Infos]\n"
        f"BinaryFormat=IEEE_FLOAT_32\n\n[Channel Infos]\n{chans}\n", encoding="utf-8")
    marks = "\n".join(f"Mk{i + 2}=Stimulus,{d},{int(round(t * sfreq)) + 1},1,0"
                      for i, (t, d) in enumerate(zip(onsets_s, descriptions)))
    stem.with_suffix(".vmrk").write_text(
        "Brain Vision Data Exchange Marker File Version 1.0\n\n[Common Infos]\nCodepage=UTF-8\n"
        f"DataFile={names['.eeg']}\n\n[Marker Infos]\nMk1=New Segment,,1,1,0\n{marks}\n", encoding="utf-8")
    return stem.with_suffix(".vhdr")


def test_brainvision_reads_back_with_its_events(realistic_subjects, tmp_path):
    s = realistic_subjects[0]
    eeg = s.eeg.copy().pick("eeg").crop(0, 40)
    ann = eeg.annotations
    keep = [i for i, o in enumerate(ann.onset) if o < 39]
    path = _write_brainvision(tmp_path / "x_eeg.vhdr", eeg.get_data(), eeg.info["sfreq"], eeg.ch_names,
                              [ann.onset[i] for i in keep], [ann.description[i] for i in keep])
    back = read_eeg(path)
    assert back.ch_names == eeg.ch_names and back.info["sfreq"] == eeg.info["sfreq"]
    np.testing.assert_allclose(back.get_data(), eeg.get_data(), atol=1e-10)  # float32 µV: ~1e-13 V resolution
    got = [(round(float(o), 3), d.split("/")[-1]) for o, d in zip(back.annotations.onset, back.annotations.description)
           if d != "New Segment/"]
    want = [(round(float(ann.onset[i]), 3), ann.description[i]) for i in keep]
    assert [o for o, _ in got] == [o for o, _ in want] and [d for _, d in got] == [d for _, d in want]
