"""mmib.data.physio.read_base: file suffixes, one-line errors and file-named warnings of :func:`mne_read`, and the
truncation message of a short EDF/BDF."""

import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from mmib.data.physio.read_base import (
    PhysioInputError,
    PhysioWarning,
    _truncation,
    first_line,
    mne_read,
    suffix,
)
from mmib.errors import MMIBError


class _Raw:
    def __init__(self):
        self.loaded = False

    def load_data(self, verbose=None):
        self.loaded = True


def test_suffix_and_first_line():
    assert suffix(Path("/d/Sub01.FIF.GZ")) == ".fif.gz"
    assert suffix(Path("a.b.EDF")) == ".edf"
    assert suffix(Path("nirx_folder")) == ""
    assert first_line(ValueError("bad header\nmore detail\n")) == "ValueError: bad header"
    assert first_line(OSError()) == "OSError"
    assert issubclass(PhysioInputError, MMIBError) and issubclass(PhysioInputError, ValueError)


def test_mne_read_loads_and_turns_failures_into_one_line(tmp_path):
    path = tmp_path / "rec.edf"
    calls = []

    def reader(p, **kw):
        calls.append((p, kw))
        return _Raw()

    raw = mne_read(reader, path, "EEG", preload=False)
    assert raw.loaded and calls == [(path, {"preload": False})]
    mne_read(reader, path, "EEG", "other.vhdr")  # explicit positional arguments replace the path
    assert calls[-1] == ("other.vhdr", {})

    def broken(p):
        raise RuntimeError("EDF header invalid\n  traceback-like detail")

    with pytest.raises(PhysioInputError, match=rf"^EEG {path}: not a readable file \(RuntimeError: EDF header "
                                               r"invalid\)$"):
        mne_read(broken, path, "EEG")

    def ours(p):
        raise MMIBError("already a named error")

    with pytest.raises(MMIBError, match="^already a named error$"):
        mne_read(ours, path, "EEG")


def test_mne_read_reissues_warnings_naming_the_file(tmp_path):
    path = tmp_path / "rec.snirf"

    def noisy(p):
        warnings.warn("Channel names are not unique\nsecond line", RuntimeWarning, stacklevel=2)
        warnings.warn("old API", DeprecationWarning, stacklevel=2)
        warnings.warn("This filename does not conform to MNE naming conventions", RuntimeWarning, stacklevel=2)
        return _Raw()

    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        mne_read(noisy, path, "fNIRS")
    msgs = [(w.category, str(w.message)) for w in rec]
    assert msgs == [(PhysioWarning, f"fNIRS {path}: Channel names are not unique")]


def test_truncation_message_from_the_edf_header(tmp_path):
    head = bytearray(b" " * 256)
    head[236:244] = b"20      "  # 20 data records
    head[244:252] = b"2       "  # of 2 s each: 40 s declared
    f = tmp_path / "short.edf"
    f.write_bytes(bytes(head) + b"\0" * 100)
    raw = SimpleNamespace(n_times=2500, info={"sfreq": 250.0},
                          annotations=SimpleNamespace(description=["left", "right", "BAD_acq", "left", "EDGE x"]))
    msg = _truncation(f, raw)  # holds 10 s with 3 trials: ~0.3 trials/s over 30 s lost
    assert msg == ("truncated: the header declares 40.0 s, the file holds 10.0 s; about 9 trials after 10.0 s are "
                   "lost (their annotations were in the missing part)")
    f.write_bytes(b"not an edf")
    assert _truncation(f, raw).startswith("the file is shorter than its header says (it holds 10.0 s)")
