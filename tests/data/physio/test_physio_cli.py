"""``mmib physio simulate`` / ``preprocess`` and the input errors."""

import argparse

import numpy as np
import pytest

from mmib.data.physio import cli as physio_cli
from mmib.data.physio.preprocess import PhysioInputError, read_eeg, read_fnirs


def _run(argv):
    parser = argparse.ArgumentParser()
    physio_cli.register_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_simulate_then_preprocess(tmp_path):
    out = tmp_path / "sim"
    assert _run(["physio", "simulate", "--out", str(out), "--subjects", "2", "--trials", "12",
                 "--set", "event_rate=0.6"]) == 0  # fmt: skip
    names = sorted(p.name for p in out.iterdir())
    assert names == ["simulation.json", "sub-01_eeg.edf", "sub-01_events.tsv", "sub-01_nirs.snirf",
                     "sub-02_eeg.edf", "sub-02_events.tsv", "sub-02_nirs.snirf"]  # fmt: skip
    npz = tmp_path / "feat.npz"
    assert _run(["physio", "preprocess", str(out), "--out", str(npz)]) == 0
    d = np.load(npz)
    assert d["eeg"].shape == (24, 208) and d["fnirs"].shape == (24, 48)
    assert d["groups"].tolist() == [0] * 12 + [1] * 12
    np.testing.assert_array_equal(d["y"], d["latents__e"])  # conditions sorted: rest = 0, task = 1
    assert "latents__tau" in d and "latents__hbo_peak_time" not in d  # NaN on rest trials → left out
    sig = tmp_path / "sig.npz"
    _run(["physio", "preprocess", "--fnirs", str(out / "sub-01_nirs.snirf"), "--out", str(sig),
          "--representation", "signal", "--conditions", "task"])  # fmt: skip
    d = np.load(sig)
    assert set(d) >= {"fnirs", "y", "groups"} and "eeg" not in d and np.all(d["y"] == 0)


def test_input_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.edf"):
        read_eeg(tmp_path / "nope.edf")
    bad = tmp_path / "x.txt"
    bad.write_text("hello")
    with pytest.raises(PhysioInputError, match="unsupported extension '.txt'"):
        read_eeg(bad)
    with pytest.raises(PhysioInputError, match="unsupported extension"):
        read_fnirs(bad)
    with pytest.raises(PhysioInputError, match="no recordings named"):
        _run(["physio", "preprocess", str(tmp_path), "--out", str(tmp_path / "o.npz")])
    with pytest.raises(PhysioInputError, match="unknown simulator parameter"):
        _run(["physio", "simulate", "--out", str(tmp_path / "s"), "--set", "bogus=1"])


def test_missing_condition_is_named(realistic_subjects):
    from mmib.data.physio.preprocess import preprocess_recording

    with pytest.raises(PhysioInputError, match="'stimulus'"):
        preprocess_recording(realistic_subjects[0].eeg, None, conditions=["stimulus"])
