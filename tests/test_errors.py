"""mmib.errors: the user-facing errors and their "did you mean" suggestions."""

import difflib

import pytest

from mmib.errors import (
    MissingDependencyError,
    MMIBError,
    UnknownNameError,
    check_known,
    close_matches,
    did_you_mean,
)


def test_close_matches_is_difflib_on_lowercased_names_and_keeps_the_valid_spelling():
    valid = ["CLIP", "clip_ib", "comm", "cox", "FactorCL"]
    assert close_matches("clpi", valid) == ["CLIP"]
    assert close_matches("factorcl", valid) == ["FactorCL"]
    # the same as difflib on the lowered names, best first, at most n
    lowered = [v.lower() for v in valid]
    for name in ("clip", "coxx", "com", "zzz", "factor"):
        want = difflib.get_close_matches(name, lowered, n=2, cutoff=0.6)
        assert [v.lower() for v in close_matches(name, valid, n=2)] == want
    assert close_matches("zzzz", valid) == []


def test_dotted_names_compare_their_last_part_among_siblings():
    keys = ["trainer.max_epochs", "trainer.max_steps", "trainer.devices", "method.max_epochs"]
    assert close_matches("trainer.max_epoch", keys) == ["trainer.max_epochs", "trainer.max_steps"]
    assert "method.max_epochs" not in close_matches("trainer.max_epoch", keys)
    assert close_matches("trainer.zzz", keys) == []  # the shared prefix alone is not close
    # no sibling under that parent: the whole name is compared
    assert close_matches("trainr.max_epochs", keys)[0] == "trainer.max_epochs"


def test_several_names_at_once_get_each_ones_matches_without_repeats():
    assert close_matches("eeg, fnris", ["eeg", "fnirs", "ecg"]) == ["eeg", "ecg", "fnirs"]
    assert close_matches("clpi, cilp", ["clip", "comm"]) == ["clip"]
    assert len(close_matches("a1, a2, a3, a4", ["a1", "a2", "a3", "a4"], n=3)) == 3


def test_did_you_mean_text():
    assert did_you_mean("clpi", ["clip", "cox"]) == "did you mean 'clip'? "
    assert did_you_mean("omib_svd", ["omib", "omib_svdd", "clip"]) == "did you mean 'omib_svdd' or 'omib'? "
    assert did_you_mean("zzz", ["clip"]) == ""


def test_unknown_name_error_message_suggestions_and_types():
    e = UnknownNameError("method", "clpi", ("comm", "clip"))
    assert str(e) == "unknown method 'clpi'; did you mean 'clip'? valid: clip, comm"  # not quoted like a KeyError
    assert e.what == "method" and e.name == "clpi" and e.valid == ["clip", "comm"] and e.suggestions == ["clip"]
    assert isinstance(e, MMIBError) and isinstance(e, KeyError)
    assert str(UnknownNameError("data set", "x", [])) == "unknown data set 'x'; valid: (none)"
    with pytest.raises(KeyError):
        raise UnknownNameError("method", "x", ["clip"])


def test_missing_dependency_error_is_an_import_error_and_an_mmib_error():
    e = MissingDependencyError("needs mne")
    assert isinstance(e, ImportError) and isinstance(e, MMIBError) and str(e) == "needs mne"


def test_check_known_names_every_unknown_name_at_once():
    check_known("option", {"lr": 1, "tau": 2}, ["lr", "tau", "seed"])  # all known: nothing
    check_known("option", [], [])
    with pytest.raises(UnknownNameError) as e:
        check_known("option of 'x'", ["lr", "sed", "tua"], ["lr", "tau", "seed"])
    assert str(e.value) == "unknown option of 'x' 'sed, tua'; did you mean 'seed' or 'tau'? valid: lr, seed, tau"
    assert e.value.suggestions == ["seed", "tau"]
