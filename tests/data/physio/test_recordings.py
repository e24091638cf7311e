"""mmib.data.physio.recordings: the recordings of a folder found and paired by stem, their subject groups, and the
latent columns as stored. (Preprocessing a folder to the generic .npz runs end to end in test_physio_cli.py.)"""

from pathlib import Path

import numpy as np
import pytest

from mmib.data.physio import recordings as physio_recordings
from mmib.data.physio.read_base import PhysioInputError
from mmib.data.physio.recordings import _latent_array, find_recordings


def test_subject_groups_follow_bids_labels():
    ids, kind = physio_recordings.subject_groups(["sub-01_ses-1", "sub-02_ses-1", "sub-01_ses-2", Path("/x/sub-03")])
    assert ids.tolist() == [0, 1, 0, 2] and kind == "subject"
    ids, kind = physio_recordings.subject_groups(["s1", "sub-01", "s1"])  # not every stem names a subject
    assert ids.tolist() == [0, 1, 0] and kind == "recording"


def test_find_recordings_pairs_by_stem(tmp_path):
    for name in ("s2_eeg.bdf", "s1_eeg.EDF", "s1_nirs.snirf", "s3_nirs.csv", "notes.txt", "s4_eeg.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "s2_nirs").mkdir()  # a NIRx recording is a folder with its header and wavelength files
    for f in ("s2.hdr", "s2.wl1", "s2.wl2"):
        (tmp_path / "s2_nirs" / f).write_text("")
    (tmp_path / "s5_nirs").mkdir()  # a folder that is not a NIRx recording (no .wl1): ignored
    (tmp_path / "s5_nirs" / "s5.hdr").write_text("")
    found = find_recordings(tmp_path)
    assert [(r["stem"], r["eeg"], r["fnirs"]) for r in found] == [
        (Path("s1"), tmp_path / "s1_eeg.EDF", tmp_path / "s1_nirs.snirf"),
        (Path("s2"), tmp_path / "s2_eeg.bdf", tmp_path / "s2_nirs"),
        (Path("s3"), None, tmp_path / "s3_nirs.csv"),
    ]


def test_find_recordings_errors_name_the_folder(tmp_path):
    with pytest.raises(PhysioInputError, match="is not a folder"):
        find_recordings(tmp_path / "missing")
    (tmp_path / "readme.md").write_text("x")
    with pytest.raises(PhysioInputError, match=r"no recordings named <stem>_eeg\.<edf"):
        find_recordings(tmp_path)
    (tmp_path / "a_eeg.edf").write_bytes(b"")
    (tmp_path / "a_eeg.fif").write_bytes(b"")
    with pytest.raises(PhysioInputError, match="two eeg recordings for 'a'"):
        find_recordings(tmp_path)


def test_latent_columns_as_stored():
    codes, n = _latent_array(np.array([0, 2, 1, 2]))
    assert codes.dtype == np.int64 and n == 3
    assert _latent_array(np.array([0, 0]))[1] == 2  # a discrete latent has at least 2 values
    for values in (np.array([0.5, 1.5]), np.array([-1, 0, 1])):
        stored, n = _latent_array(values)
        assert stored.dtype == np.float64 and n == 0  # continuous (or negative codes): kept as values
