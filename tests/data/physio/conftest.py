"""Shared simulated recordings for the physio tests (simulated once per session; small)."""

import pytest

pytest.importorskip("mne")
pytest.importorskip("mne_nirs")
pytest.importorskip("nilearn")
pytest.importorskip("neurokit2")


@pytest.fixture(scope="session")
def realistic_subjects():
    """2 subjects × 16 trials with the default nuisance (1/f, cardiac, respiration, motion, channel noise)."""
    from mmib.data.physio.eeg_fnirs_sim import simulate_eeg_fnirs

    return simulate_eeg_fnirs(n_subjects=2, trials_per_subject=16, seed=3)


@pytest.fixture(scope="session")
def realistic_files(realistic_subjects, tmp_path_factory):
    """The realistic subjects written to EDF + SNIRF + events.tsv."""
    from mmib.data.physio.io import write_simulation

    out = tmp_path_factory.mktemp("sim_realistic")
    files = write_simulation(realistic_subjects, out, {"seed": 3})
    return out, files
