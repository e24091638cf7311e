"""A typo in a simulator or pipeline option, or in a trial condition, is one named error that suggests the closest
valid names first and then lists them (issue 17's "Typos" rule, for the physio path)."""

import dataclasses

import pytest

from mmib.cli import main
from mmib.data.physio.eeg_fnirs_sim import EEGFNIRSSimConfig
from mmib.data.registry import build_dataset
from mmib.errors import UnknownNameError, check_known


def test_check_known_names_every_unknown_key_with_suggestions():
    with pytest.raises(UnknownNameError) as e:
        check_known("simulator parameter", ["n_short_chanels", "seed", "mayr"],
                    [f.name for f in dataclasses.fields(EEGFNIRSSimConfig) if f.init])
    msg = str(e.value)
    assert "'n_short_chanels, mayr'" in msg and "did you mean 'n_short_channels'" in msg
    assert "valid: " in msg and "seed" not in e.value.name
    check_known("x", ["a"], ["a", "b"])  # known names: no error


def test_simulate_set_typo_is_one_line_with_suggestion(tmp_path, capsys):
    rc = main(["physio", "simulate", "--out", str(tmp_path / "sim"), "--subjects", "1", "--trials", "2",
               "--set", "n_short_chanels=2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "unknown simulator parameter (--set) 'n_short_chanels'" in err[0]
    assert "did you mean 'n_short_channels'" in err[0]
    assert not (tmp_path / "sim").exists() or not any((tmp_path / "sim").iterdir())  # nothing written


@pytest.mark.parametrize("kw, what, wrong, right", [
    ({"simulator": {"n_short_chanels": 2}}, "simulator option", "n_short_chanels", "n_short_channels"),
    ({"fnirs_pipeline": {"sci_treshold": 0.5}}, "fnirs_pipeline option", "sci_treshold", "sci_threshold"),
    ({"eeg_pipeline": {"resampel": 64}}, "eeg_pipeline option", "resampel", "resample"),
])
def test_dataset_option_typos_are_named(kw, what, wrong, right):
    with pytest.raises(UnknownNameError, match=rf"unknown eeg_fnirs_sim {what} '{wrong}'; did you mean '{right}'"):
        build_dataset("eeg_fnirs_sim", n_subjects=1, trials_per_subject=2, **kw)


def test_condition_typo_suggests_the_annotation():
    import mne
    import numpy as np

    from mmib.data.physio.preprocess_events import trial_events
    from mmib.data.physio.read_base import PhysioInputError

    raw = mne.io.RawArray(np.zeros((1, 2000)), mne.create_info(["c1"], 100.0, "eeg"), verbose="error")
    raw.set_annotations(mne.Annotations([1.0, 5.0], [1.0, 1.0], ["left", "right"]))
    with pytest.raises(PhysioInputError, match=r"condition 'lefft' not among the annotations \(left, right\); "
                                               r"did you mean 'left'\?"):
        trial_events(raw, ["lefft"], source="sub-01")
