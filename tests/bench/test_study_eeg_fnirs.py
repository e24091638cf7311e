"""The EEG + fNIRS study package (mmib.bench.study_eeg_fnirs): importing it registers its four protocols (each
module's own tests: tests/bench/study_eeg_fnirs/)."""

import mmib.bench.study_eeg_fnirs as study
from mmib.eval.protocols import PROTOCOLS


def test_protocols_are_registered():
    for name in ("eeg_fnirs_ceiling", "eeg_fnirs_checks", "eeg_fnirs_done", "eeg_fnirs_analyses"):
        assert PROTOCOLS[name] is getattr(study, name)
