"""mmib.data.physio.preprocess_events: trial conditions and events from a recording's annotations, and the warning
naming how many epochs MNE dropped."""

import warnings

import numpy as np
import pytest

from mmib.data.physio.preprocess_events import epochs_for, trial_conditions, trial_events, warn_dropped_epochs
from mmib.data.physio.read_base import PhysioInputError, PhysioWarning


def _raw(onsets, descriptions, sfreq=100.0, seconds=30.0, first_samp=0):
    import mne

    info = mne.create_info(["Cz"], sfreq, "eeg")
    raw = mne.io.RawArray(np.zeros((1, int(seconds * sfreq))), info, first_samp=first_samp, verbose="error")
    raw.set_annotations(mne.Annotations(onsets, 0.1, descriptions))  # relative to the first sample
    return raw


def test_trial_conditions_skip_mne_and_brainvision_markers():
    raw = _raw([1, 2, 3, 4, 5, 6], ["right", "BAD_muscle", "left", "EDGE boundary", "New Segment/", "right"])
    assert trial_conditions(raw) == ["left", "right"]


def test_trial_events_codes_and_onsets():
    raw = _raw([2.0, 5.5, 9.25, 12.0], ["right", "left", "BAD_x", "right"], first_samp=300)
    events, event_id, onsets = trial_events(raw)
    assert event_id == {"left": 1, "right": 2}
    assert events[:, 2].tolist() == [2, 1, 2]
    np.testing.assert_allclose(onsets, [2.0, 5.5, 12.0])  # seconds from the recording's start (first_samp off)
    events, event_id, onsets = trial_events(raw, conditions=["right"])
    assert event_id == {"right": 1} and onsets.tolist() == [2.0, 12.0]
    with pytest.raises(PhysioInputError, match=r"sub-01: condition 'rest' not among the annotations \(BAD_x, left, "
                                               r"right\)"):
        trial_events(raw, ["left", "rest"], source="sub-01")
    with pytest.raises(PhysioInputError, match="rec: no trial annotations"):
        trial_events(_raw([1.0], ["BAD_start"]), source="rec")


def test_warn_dropped_epochs_names_count_and_window():
    import mne

    raw = _raw([2.0, 10.0, 27.0, 29.5], ["a", "a", "b", "b"])
    events, event_id, _ = trial_events(raw)
    epochs = mne.Epochs(raw, events, event_id, tmin=-0.5, tmax=4.0, baseline=None, preload=True, verbose="error")
    assert len(epochs) == 2
    with pytest.warns(PhysioWarning, match=r"^rec\.edf: 2 of 4 trials dropped \(TOO_SHORT.*: the epoch window "
                                           r"\[-0\.5, 4\] s runs past the recording, which ends at 30\.0 s\)"):
        warn_dropped_epochs(epochs, 4, raw, "rec.edf")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_dropped_epochs(epochs, 2, raw, "rec.edf")  # nothing dropped: silent


def test_epochs_for_window_baseline_resample_and_dropped_trials():
    """The shared epoching step: cfg's window and resampling; a trial past the end is dropped with a warning naming
    the source and the count; the data are the signal's (here a ramp, baseline-corrected)."""
    from types import SimpleNamespace

    raw = _raw([2.0, 10.0, 29.5], ["a", "a", "a"])
    raw._data[0] = np.arange(raw.n_times) / 100.0  # a ramp of 1 per second
    events, event_id, _ = trial_events(raw)
    cfg = SimpleNamespace(tmin=-0.5, tmax=1.0, baseline=(None, 0.0), resample=50.0)
    with pytest.warns(PhysioWarning, match=r"rec: 1 of 3 trials dropped"):
        ep = epochs_for(raw, events, event_id, cfg, raw, "rec")
    assert len(ep) == 2 and ep.info["sfreq"] == 50.0
    assert ep.tmin == pytest.approx(-0.5) and ep.times[-1] == pytest.approx(1.0, abs=0.02)
    x = ep.get_data()[0, 0]  # the ramp minus its mean over [-0.5, 0]: 0.25 at t = 0, 1.25 at t = 1
    assert x[np.argmin(abs(ep.times))] == pytest.approx(0.25, abs=0.03)
    assert x[-1] == pytest.approx(1.25, abs=0.03)
