"""mmib.cli.__main__: ``python -m mmib.cli`` is the mmib command (its exit code, its one-line errors)."""

import runpy
import subprocess
import sys

import pytest


def test_unknown_command_is_one_line():
    r = subprocess.run([sys.executable, "-m", "mmib.cli", "frobnicate"], capture_output=True, text=True)
    assert r.returncode == 2
    assert "invalid choice: 'frobnicate'" in r.stderr and r.stderr.count("\n") == 1


def _run_module(monkeypatch, *argv):
    monkeypatch.setattr(sys, "argv", ["python -m mmib.cli", *argv])
    with pytest.raises(SystemExit) as e:
        runpy.run_module("mmib.cli.__main__", run_name="__main__")
    return e.value.code


def test_help_and_exit_codes_in_process(monkeypatch, capsys):
    assert _run_module(monkeypatch, "--help") == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mmib ") and all(c in out for c in ("train", "eval", "bench", "methods"))
    assert _run_module(monkeypatch, "methods") == 0  # main's return value is the exit code
    assert capsys.readouterr().out.splitlines()[0].split()[0] == "bigated"
    assert _run_module(monkeypatch, "report") == 2  # an MMIBError: main returns 2, the module exits with it
    err = capsys.readouterr().err
    assert err == "mmib: error: mmib report: give run / suite folders, or --suite NAME --into PAGE\n"
    assert _run_module(monkeypatch, "methods", "--nope") == 2  # argparse's own error
    assert "unrecognized arguments: --nope" in capsys.readouterr().err
