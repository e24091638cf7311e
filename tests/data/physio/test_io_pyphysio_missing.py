"""pyphysio installed but its data file missing: a named one-line error, not a bare FileNotFoundError."""

import pytest

from mmib.data.loaders._common import DataFileNotFoundError
from mmib.data.physio import io
from mmib.errors import MissingDependencyError, MMIBError


@pytest.fixture
def empty_test_data(tmp_path, monkeypatch):
    """pyphysio's test_data folder found, but empty (a broken or stripped installation)."""
    folder = tmp_path / "pyphysio" / "test_data"
    folder.mkdir(parents=True)
    monkeypatch.setattr(io, "pyphysio_test_data", lambda: folder)
    return folder


@pytest.mark.parametrize("reader, name", [(io.read_pyphysio_medical, "medical.txt.bz2"),
                                          (io.read_pyphysio_fnirs, "fnirs.ph")])
def test_missing_pyphysio_file_is_named(empty_test_data, reader, name):
    with pytest.raises(DataFileNotFoundError) as e:
        reader()
    msg = str(e.value)
    assert msg.startswith(f"the pyphysio data file '{name}' is missing: the installed package 'pyphysio' has no ")
    assert str(empty_test_data / name) in msg and "\n" not in msg
    # still a FileNotFoundError for callers that catch that, and an MMIBError for the CLI
    assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, MMIBError)


def test_missing_pyphysio_file_from_the_cli_is_one_line(empty_test_data, capsys):
    from mmib.cli import main

    code = main(["train", "data=cardio_pyphysio", "trainer.max_epochs=1"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("mmib: error: the pyphysio data file 'medical.txt.bz2' is missing"), err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_pyphysio_not_installed_is_still_a_missing_dependency(monkeypatch):
    monkeypatch.setattr(io, "pyphysio_test_data", lambda: None)
    with pytest.raises(MissingDependencyError, match=r"'medical.txt.bz2' ships with the optional package 'pyphysio'"):
        io.read_pyphysio_medical()
