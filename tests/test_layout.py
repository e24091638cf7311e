"""The tests mirror the source tree (issue 23, ``docs/guide/layers.md``): every module ``src/mmib/<dirs>/<name>.py``
has a test file ``tests/<dirs>/test_<name>.py`` (or ``test_<name>_<topic>.py``; for ``_name.py``: ``test_name*``),
so that a newcomer finds a module's tests where the module is. ``__init__.py`` files and the generated
``_manifest_data.py`` are exempt. Cross-cutting tests (run safety, bad input, recipes, ...) live beside these."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC, TESTS = ROOT / "src" / "mmib", ROOT / "tests"
EXEMPT = {"__init__.py", "_manifest_data.py"}


def mirrored(module: Path, src: Path = SRC, tests: Path = TESTS) -> list[Path]:
    """The test files of ``module``: ``test_<stem>.py`` and ``test_<stem>_<topic>.py``, except those of a sibling
    module whose name extends it (``test_preprocess_events.py`` belongs to ``preprocess_events.py``, not to
    ``preprocess.py``)."""
    rel = module.relative_to(src)
    folder = tests / rel.parent
    if not folder.is_dir():
        return []
    stem = module.stem.lstrip("_")
    longer = [p.stem.lstrip("_") for p in module.parent.glob("*.py") if p.stem.lstrip("_").startswith(stem + "_")]
    return sorted(t for t in folder.glob("test_*.py")
                  if (t.stem == f"test_{stem}" or t.stem.startswith(f"test_{stem}_"))
                  and not any(t.stem == f"test_{o}" or t.stem.startswith(f"test_{o}_") for o in longer))


def modules(src: Path = SRC) -> list[Path]:
    return sorted(p for p in src.rglob("*.py") if p.name not in EXEMPT)


def test_every_module_has_its_mirrored_test_file():
    missing = [str(m.relative_to(SRC)) for m in modules() if not mirrored(m)]
    assert not missing, ("modules without tests/<same folders>/test_<module>*.py: " + ", ".join(missing))


def test_the_rule_sees_a_module_without_tests(tmp_path):
    """The check itself can fail: a new module with no test file is reported, and its test file satisfies it."""
    (tmp_path / "src" / "pkg").mkdir(parents=True)
    (tmp_path / "tests" / "pkg").mkdir(parents=True)
    mod = tmp_path / "src" / "pkg" / "_thing.py"
    mod.write_text("X = 1\n")
    assert modules(tmp_path / "src") == [mod]
    assert not mirrored(mod, tmp_path / "src", tmp_path / "tests")
    # a test file of a sibling module whose name extends this one's does not count for it
    (tmp_path / "src" / "pkg" / "thing_events.py").write_text("Y = 2\n")
    (tmp_path / "tests" / "pkg" / "test_thing_events.py").write_text("")
    assert not mirrored(mod, tmp_path / "src", tmp_path / "tests")
    (tmp_path / "tests" / "pkg" / "test_thing_topic.py").write_text("")
    assert [p.name for p in mirrored(mod, tmp_path / "src", tmp_path / "tests")] == ["test_thing_topic.py"]


MAX_LINES = 450  # issue 23: rooms cut along their seams, none larger than this


def test_no_module_exceeds_the_line_limit():
    long = {str(m.relative_to(SRC)): n for m in modules() if (n := len(m.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (cut them along a seam, not into _part2 files): {long}"
