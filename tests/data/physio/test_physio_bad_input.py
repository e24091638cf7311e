"""Issue 17 (physio): a garbage recording is a one-line error naming it (exit 2), and a recording shorter than its
annotations/events table gives a warning naming the file and how many trials were dropped."""

import shutil

import numpy as np
import pytest

from mmib.cli import main
from mmib.data.physio.preprocess import PhysioInputError, PhysioWarning, read_eeg, read_fnirs


@pytest.mark.parametrize("name", ["g.edf", "g.bdf", "g.vhdr", "g.set", "g.fif", "g_nirs.snirf", "g.csv"])
def test_garbage_file_is_one_line_error_naming_it(tmp_path, capsys, snapshot, name):
    bad = tmp_path / name
    bad.write_bytes(np.random.default_rng(0).bytes(4000))
    opt = "--fnirs" if name.endswith((".snirf", ".csv")) else "--eeg"
    before = snapshot(tmp_path)
    assert main(["physio", "preprocess", opt, str(bad), "--out", str(tmp_path / "o.npz")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err and "Traceback" not in err, err
    assert snapshot(tmp_path) == before  # nothing written, nothing changed
    reader = read_fnirs if opt == "--fnirs" else read_eeg
    with pytest.raises(PhysioInputError, match=name):
        reader(bad)


def test_truncated_edf_warns_with_file_and_dropped_count(realistic_files, tmp_path, snapshot):
    src, _ = realistic_files
    for f in ("sub-01_eeg.edf", "sub-01_events.tsv"):
        shutil.copy(src / f, tmp_path / f)
    edf = tmp_path / "sub-01_eeg.edf"
    data = edf.read_bytes()
    edf.write_bytes(data[: len(data) // 2])
    out = tmp_path / "o.npz"
    before = snapshot(tmp_path, src)
    with pytest.warns(PhysioWarning) as rec:
        assert main(["physio", "preprocess", "--eeg", str(edf), "--out", str(out)]) == 0
    after = snapshot(tmp_path, src)
    assert set(after) - set(before) <= {out, out.with_suffix(".json")}  # only the requested outputs are added
    assert {p: after[p] for p in before} == before  # the inputs are untouched
    msgs = [str(w.message) for w in rec]
    assert any(str(edf) in m and "truncated" in m and "header declares" in m for m in msgs), msgs
    n_kept = len(np.load(out)["y"])
    assert 0 < n_kept < 16
    assert any(str(edf) in m and f"{16 - n_kept} of 16 trials of sub-01_events.tsv have no epoch" in m
               for m in msgs), msgs  # fmt: skip


def test_epoch_past_the_end_is_a_warning_naming_the_count(realistic_subjects):
    from mmib.data.physio.preprocess_eeg import EEGPipeline, eeg_epochs

    raw = realistic_subjects[0].eeg.copy()
    last = raw.annotations.onset.max()
    raw.crop(0, last + 1.0)  # the last trial's 4 s window runs past the end
    with pytest.warns(PhysioWarning, match=r"sub-01 \(EEG\): 1 of 16 trials dropped"):
        ep = eeg_epochs(raw, EEGPipeline(), source="sub-01 (EEG)")
    assert len(ep) == 15
