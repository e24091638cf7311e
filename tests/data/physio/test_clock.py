"""Issue 21: EEG and fNIRS clocks aligned from shared triggers (offset + linear drift), robust to lost and extra
triggers, with a clear error when the triggers cannot be matched; preprocess pairs trials by it."""

import numpy as np
import pytest

from mmib.data.physio.clock import align_triggers
from mmib.data.physio.preprocess import PhysioInputError, PhysioWarning


def _triggers(seed, minutes=30.0, iti=(6.0, 14.0)):
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.uniform(*iti, size=int(minutes * 60 / iti[0])))
    return rng, t[t < minutes * 60 - 5]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_2s_offset_and_50ppm_drift_with_5_percent_dropped(seed):
    rng, t = _triggers(seed)
    offset, drift = 2.0, 50e-6
    t_eeg = np.round(t * 500.0) / 500.0  # EEG at 500 Hz
    t_nirs = np.round((offset + (1 + drift) * t) * 10.0) / 10.0  # fNIRS at 10 Hz, its own clock
    n = len(t)
    drop_e = rng.choice(n, int(round(0.05 * n)), replace=False)
    drop_n = rng.choice(n, int(round(0.05 * n)), replace=False)
    keep_e, keep_n = np.setdiff1d(np.arange(n), drop_e), np.setdiff1d(np.arange(n), drop_n)
    extra = rng.uniform(0, 1800, 2)  # spurious triggers on the fNIRS side
    al = align_triggers(t_eeg[keep_e], np.r_[t_nirs[keep_n], extra])
    grid = np.linspace(0.0, 1800.0, 1000)
    err = np.abs(al.to_b(grid) - (offset + (1 + drift) * grid))
    assert err.max() < 0.1, (al.offset_s, al.drift)  # within one fNIRS sample at 10 Hz, over all 30 minutes
    both = np.intersect1d(keep_e, keep_n)
    assert len(al.pairs) == len(both)
    # every matched pair is the same pulse
    np.testing.assert_array_equal(keep_e[al.pairs[:, 0]], keep_n[al.pairs[:, 1]])


def test_labels_must_agree_and_unmatchable_triggers_are_an_error():
    _, t = _triggers(3, minutes=10)
    lab = np.array(["a", "b"])[np.arange(len(t)) % 2]
    al = align_triggers(t, t + 5.0, lab, lab)
    assert abs(al.offset_s - 5.0) < 1e-6 and len(al.pairs) == len(t)
    rng = np.random.default_rng(4)
    with pytest.raises(PhysioInputError, match="EEG x and fNIRS y: cannot match the triggers"):
        align_triggers(t, np.sort(rng.uniform(0, 600, len(t))), names=("EEG x", "fNIRS y"))
    with pytest.raises(PhysioInputError, match="periodic"):
        align_triggers(np.arange(0, 300, 10.0), np.arange(0, 300, 10.0) + 3.0)
    with pytest.raises(PhysioInputError, match="at least 3 needed"):
        align_triggers([1.0, 2.0], [1.0, 2.0])


def test_preprocess_pairs_trials_by_clock_not_by_order(realistic_subjects):
    """fNIRS on its own clock (started 2 s late, 50 ppm fast) with its first trial lost: pairs follow the clock."""
    import mne

    from mmib.data.physio.preprocess import FNIRSPipeline, preprocess_recording

    s = realistic_subjects[0]
    eeg, fnirs = s.eeg, s.fnirs.copy()
    ann = fnirs.annotations
    on = (ann.onset - 2.0) * (1 + 50e-6)
    fnirs.set_annotations(mne.Annotations(on[1:], ann.duration[1:], ann.description[1:]))
    with pytest.warns(PhysioWarning, match=r"1 of 16 EEG and 0 of 15 fNIRS trials have no partner"):
        rec = preprocess_recording(eeg, fnirs, fnirs_cfg=FNIRSPipeline(l_freq=None), source="sub-01")
    assert len(rec.y) == 15
    np.testing.assert_array_equal(rec.y, (np.asarray(ann.description[1:]) == "task").astype(int))
    assert abs(rec.alignment["offset_s"] + 2.0) < 0.1 and abs(rec.alignment["drift_ppm"]) < 500  # 10 Hz onsets
    same = preprocess_recording(eeg, s.fnirs, fnirs_cfg=FNIRSPipeline(l_freq=None), source="sub-01")
    assert same.alignment is None and len(same.y) == 16  # one clock: paired in order
