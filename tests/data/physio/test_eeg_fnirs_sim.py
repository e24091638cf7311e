"""The EEG + fNIRS simulator (mmib.data.physio.eeg_fnirs_sim): determinism, latent structure, validation."""

import numpy as np
import pytest

from mmib.data.physio.eeg_fnirs_sim import EEGFNIRSSimConfig, simulate_eeg_fnirs


def test_same_seed_same_recording_other_seed_differs():
    a = simulate_eeg_fnirs(n_subjects=1, trials_per_subject=4, seed=11)[0]
    b = simulate_eeg_fnirs(n_subjects=1, trials_per_subject=4, seed=11)[0]
    c = simulate_eeg_fnirs(n_subjects=1, trials_per_subject=4, seed=12)[0]
    np.testing.assert_array_equal(a.eeg.get_data(), b.eeg.get_data())
    np.testing.assert_array_equal(a.fnirs.get_data(), b.fnirs.get_data())
    assert not np.allclose(a.fnirs.get_data()[:, : c.fnirs.n_times], c.fnirs.get_data()[:, : a.fnirs.n_times])


def test_latents_follow_their_definitions():
    cfg = EEGFNIRSSimConfig(n_subjects=1, trials_per_subject=240, iti_range=(15.0, 15.0), eeg_sfreq=100.0,
                            n_fnirs_channels=2, eeg_channels=("Cz", "Pz", "Oz"))  # fmt: skip
    from mmib.data.physio.eeg_fnirs_sim import simulate_subject

    tr = simulate_subject(cfg, 0, np.random.default_rng(0)).trials
    np.testing.assert_array_equal(tr["synergy"], (tr["G"] + tr["A"]) % 2)
    # pure synergy: balanced within every level of G and of A
    for lvl in (0, 1):
        assert abs(tr["synergy"][tr["G"] == lvl].mean() - 0.5) < 0.12
        assert abs(tr["synergy"][tr["A"] == lvl].mean() - 0.5) < 0.12
    np.testing.assert_allclose(
        tr["efficiency"], np.log(tr["G_value"] / cfg.gamma_levels_uv[0]) - np.log(tr["A_value"] / cfg.amplitude_levels_um[0])
    )
    assert np.all(tr["hbo_peak_um"][tr["e"] == 0] == 0) and np.all(np.isnan(tr["hbo_peak_time"][tr["e"] == 0]))
    assert set(np.unique(tr["k"])) == {0, 1} and 0.35 < tr["e"].mean() < 0.65
    lo, hi = cfg.t0_range
    assert tr["t0"].min() >= lo and tr["t0"].max() <= hi
    # amplitude levels separate the response sizes
    assert tr["A_value"][tr["A"] == 1].min() > tr["A_value"][tr["A"] == 0].max() * 0.9


@pytest.mark.parametrize(
    "kw, word",
    [({"n_subjects": 0}, "n_subjects"), ({"states": ("alpha", "mu")}, "states"), ({"event_rate": 0.0}, "event_rate"),
     ({"iti_range": (5.0, 6.0)}, "iti_range"), ({"eeg_sfreq": 64.0}, "eeg_sfreq")],
)  # fmt: skip
def test_bad_parameters_name_the_field(kw, word):
    with pytest.raises(ValueError, match=word):
        EEGFNIRSSimConfig(**kw)


def test_unknown_montage_site_is_named():
    with pytest.raises(ValueError, match="XY9"):
        EEGFNIRSSimConfig(n_subjects=1, trials_per_subject=2, eeg_channels=("Cz", "XY9"))
        simulate_eeg_fnirs(n_subjects=1, trials_per_subject=2, eeg_channels=("Cz", "XY9"))
