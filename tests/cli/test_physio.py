"""mmib.cli.physio: ``mmib physio simulate`` / ``preprocess`` turn their flags into the simulator's config and the
pipelines' settings, pair recordings, and refuse bad input with one line (exit 2). The simulator and the pipelines
are replaced by recorders here; the real chain runs in tests/data/physio/test_physio_cli.py."""

import numpy as np
import pytest

import mmib.data.physio.eeg_fnirs_sim as sim
import mmib.data.physio.io as physio_io
import mmib.data.physio.recordings as recordings
from mmib.cli import main


@pytest.fixture()
def simulated(monkeypatch):
    seen = {}

    def fake_simulate(cfg):
        seen["cfg"] = cfg
        return ["subject"] * cfg.n_subjects

    def fake_write(subjects, out, config, eeg_format, fnirs_format):
        seen.update(out=out, config=config, formats=(eeg_format, fnirs_format))
        return [{"eeg": f"sub-{i:02d}_eeg.{eeg_format}", "fnirs": f"sub-{i:02d}_nirs.{fnirs_format}",
                 "events": f"sub-{i:02d}_events.tsv"} for i in range(1, len(subjects) + 1)]

    monkeypatch.setattr(sim, "simulate_eeg_fnirs", fake_simulate)
    monkeypatch.setattr(physio_io, "write_simulation", fake_write)
    return seen


def test_simulate_flags_and_set_values_become_the_simulator_config(simulated, tmp_path, capsys):
    assert main(["physio", "simulate", "--out", str(tmp_path), "--subjects", "3", "--trials", "4", "--seed", "7",
                 "--eeg-sfreq", "100", "--fnirs-channels", "4", "--eeg-format", "bdf", "--fnirs-format", "fif",
                 "--set", "activation_duration=1.5", "--set", "iti_range=[20, 22]"]) == 0
    cfg = simulated["cfg"]
    assert isinstance(cfg, sim.EEGFNIRSSimConfig)
    assert (cfg.n_subjects, cfg.trials_per_subject, cfg.seed) == (3, 4, 7)
    assert (cfg.eeg_sfreq, cfg.n_fnirs_channels) == (100.0, 4)
    assert cfg.activation_duration == 1.5 and cfg.iti_range == (20, 22)  # --set values are JSON
    assert simulated["config"] == cfg.to_dict() and simulated["formats"] == ("bdf", "fif")
    lines = capsys.readouterr().out.splitlines()
    assert lines == [f"{tmp_path / f'sub-0{i}_eeg.bdf'}  {tmp_path / f'sub-0{i}_nirs.fif'}  "
                     f"{tmp_path / f'sub-0{i}_events.tsv'}" for i in (1, 2, 3)]


@pytest.mark.parametrize("extra, message", [
    (["--set", "activation_duration"], "mmib: error: --set expects KEY=VALUE, got 'activation_duration'"),
    (["--set", "activation_duraton=1"], "mmib: error: unknown simulator parameter (--set) 'activation_duraton'; "
                                         "did you mean 'activation_duration'? valid: "),
    (["--subjects", "0"], "mmib: error: EEG+fNIRS simulator: n_subjects must be >= 1, got 0"),
    (["--trials", "1"], "mmib: error: EEG+fNIRS simulator: trials_per_subject must be >= 2, got 1"),
])
def test_simulate_bad_input_is_one_line_exit_2(simulated, tmp_path, capsys, extra, message):
    assert main(["physio", "simulate", "--out", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1
    assert "cfg" not in simulated


@pytest.fixture()
def preprocessed(monkeypatch):
    seen = {}

    def fake_preprocess(recs, out, representation, eeg_cfg, fnirs_cfg, conditions=None):
        seen.update(recs=recs, out=out, representation=representation, eeg=eeg_cfg, fnirs=fnirs_cfg,
                    conditions=conditions)
        return {"eeg": np.zeros((5, 3)), "y": np.zeros(5), "meta": np.array("{}")}

    monkeypatch.setattr(recordings, "preprocess_to_npz", fake_preprocess)
    return seen


def test_preprocess_pairs_files_by_order_and_passes_the_pipeline_settings(preprocessed, tmp_path, capsys):
    eeg = [tmp_path / "sub-01_eeg.edf", tmp_path / "sub-02_eeg.bdf"]
    fnirs = [tmp_path / "sub-01_nirs.snirf", tmp_path / "sub-02_nirs.fif"]
    out = tmp_path / "x.npz"
    assert main(["physio", "preprocess", "--eeg", *map(str, eeg), "--fnirs", *map(str, fnirs), "--out", str(out),
                 "--representation", "signal", "--conditions", "left, right", "--eeg-band", "2", "30",
                 "--eeg-window", "-0.2", "2", "--notch", "50", "--eeg-resample", "64", "--psd-method", "multitaper",
                 "--fnirs-band", "0.02", "0.2", "--fnirs-window", "-1", "10", "--ppf", "5", "--tddr",
                 "--short-channel-regression"]) == 0
    assert preprocessed["recs"] == [{"stem": tmp_path / "sub-01", "eeg": eeg[0], "fnirs": fnirs[0]},
                                    {"stem": tmp_path / "sub-02", "eeg": eeg[1], "fnirs": fnirs[1]}]
    assert preprocessed["out"] == out and preprocessed["representation"] == "signal"
    assert preprocessed["conditions"] == ["left", "right"]
    e, f = preprocessed["eeg"], preprocessed["fnirs"]
    assert (e.l_freq, e.h_freq, e.tmin, e.tmax, e.notch, e.resample, e.psd_method) == \
        (2.0, 30.0, -0.2, 2.0, 50.0, 64.0, "multitaper")
    assert (f.l_freq, f.h_freq, f.tmin, f.tmax, f.ppf, f.motion_correction, f.short_channel_regression) == \
        (0.02, 0.2, -1.0, 10.0, 5.0, "tddr", True)
    assert capsys.readouterr().out.strip() == f"wrote {out} (eeg (5, 3), y (5,)) and {tmp_path / 'x.json'}"
    # one modality alone; the stem drops the _eeg / _nirs suffix and the extension
    assert main(["physio", "preprocess", "--fnirs", str(fnirs[0]), "--out", str(out)]) == 0
    assert preprocessed["recs"] == [{"stem": tmp_path / "sub-01", "eeg": None, "fnirs": fnirs[0]}]
    assert preprocessed["conditions"] is None and preprocessed["fnirs"].motion_correction is None


def test_preprocess_bad_input_is_one_line_exit_2(preprocessed, tmp_path, capsys):
    out = str(tmp_path / "x.npz")
    assert main(["physio", "preprocess", "--out", out]) == 2
    assert capsys.readouterr().err == ("mmib: error: physio preprocess: give a folder of recordings, or --eeg / "
                                       "--fnirs files\n")
    assert main(["physio", "preprocess", "--eeg", "a_eeg.edf", "b_eeg.edf", "--fnirs", "a_nirs.snirf", "--out",
                 out]) == 2
    assert capsys.readouterr().err == "mmib: error: --eeg has 2 files and --fnirs 1; pair them 1:1\n"
    single = tmp_path / "sub-01_eeg.edf"
    single.write_bytes(b"")
    assert main(["physio", "preprocess", str(single), "--out", out]) == 2
    assert capsys.readouterr().err.startswith(f"mmib: error: {single}: positional inputs are folders of recordings")
    assert preprocessed == {}
