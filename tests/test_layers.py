"""The layers of mmib hold (``docs/guide/layers.md``): ``lint-imports`` keeps the contracts of ``pyproject.toml``
(the ``layers`` contract and the ``acyclic_siblings`` one, with no exception listed), and a copy of the package with
one import against them breaks them: an upward import inside a function, an import cycle between two files of one
package, a new top-level module that has no layer."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(src: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the ``mmib`` package found in ``src`` (first on the path), with this checkout's contracts."""
    if not LINT.is_file():
        pytest.fail(f"{LINT} is missing: install the dev extra (`make venv`, or pip install -c constraints.txt "
                    "import-linter)")
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run([str(LINT), "--no-cache", "--config", str(ROOT / "pyproject.toml")], cwd=src, env=env,
                          capture_output=True, text=True, timeout=300)


def test_the_tree_keeps_every_contract():
    r = _lint(ROOT / "src")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "2 kept, 0 broken" in r.stdout


@pytest.fixture
def copy_of_mmib(tmp_path):
    shutil.copytree(ROOT / "src" / "mmib", tmp_path / "mmib", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def test_an_upward_import_inside_a_function_breaks_the_layers(copy_of_mmib):
    _append(copy_of_mmib / "mmib" / "data" / "spec.py", "\n\ndef _upward():\n    from mmib.eval.report import load_results"
                                                        "  # noqa\n\n    return load_results\n")
    r = _lint(copy_of_mmib)
    assert r.returncode == 1
    assert "mmib layers (top imports bottom, never the reverse) BROKEN" in r.stdout
    assert "mmib.data.spec -> mmib.eval.report" in r.stdout


def test_a_file_cycle_inside_a_package_is_found(copy_of_mmib):
    # io -> checkpoint and checkpoint -> io, both inside functions: a cycle between two files of mmib.utils
    _append(copy_of_mmib / "mmib" / "utils" / "io.py", "\n\ndef _back():\n    from mmib.utils import checkpoint  # noqa"
                                                       "\n\n    return checkpoint\n")
    _append(copy_of_mmib / "mmib" / "utils" / "checkpoint.py", "\n\ndef _forth():\n    from mmib.utils import io  # noqa"
                                                               "\n\n    return io\n")
    r = _lint(copy_of_mmib)
    assert r.returncode == 1
    assert "no import cycle between the modules or packages of any mmib package BROKEN" in r.stdout
    assert "mmib layers (top imports bottom, never the reverse) KEPT" in r.stdout


def test_a_module_without_a_layer_is_refused(copy_of_mmib):
    (copy_of_mmib / "mmib" / "newcomer.py").write_text('"""A module nobody placed in a layer."""\n')
    r = _lint(copy_of_mmib)
    assert r.returncode == 1
    assert "mmib.newcomer" in r.stdout + r.stderr
