"""The README's Python examples run as written (a broken example fails here).

Every ```python block of README.md is executed, in order, in one namespace (a later block may use an earlier
one's names), inside a temporary working directory (the API example saves ``model.pt`` to the current folder).
One rewrite: ``max_epochs=<n>`` becomes ``max_epochs=1``. The number of epochs changes how good the numbers are,
not whether the calls work, and the README's 20 epochs would make this a slow test; nothing else is touched.
"""

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
# `NAME = ...  # (a, b)...` comments state the shape of what the line returns
SHAPE_COMMENT = re.compile(r"^(\w+) = .*#\s*\((\d+), (\d+)\)", re.M)


def readme_blocks() -> list[str]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def fast(code: str) -> str:
    return re.sub(r"\bmax_epochs\s*=\s*\d+", "max_epochs=1", code)


def test_readme_has_python_examples():
    blocks = readme_blocks()
    assert len(blocks) >= 1, f"no ```python block in {README}"
    assert any("MultimodalModel" in b for b in blocks), "the README lost its Python API example"


def test_readme_python_blocks_run(tmp_path, monkeypatch, capsys):
    import tempfile

    from mmib.data import registry

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the API's default run folders (mkdtemp) go here
    monkeypatch.setattr(registry, "DATASETS", dict(registry.DATASETS))  # the example's data set stays local
    ns: dict = {"__name__": "readme"}
    for i, block in enumerate(readme_blocks()):
        code = fast(block)
        try:
            exec(compile(code, f"README.md python block {i + 1}", "exec"), ns)
        except Exception as e:
            raise AssertionError(f"README.md python block {i + 1} fails: {type(e).__name__}: {e}\n{code}") from e
        for name, n, d in SHAPE_COMMENT.findall(block):
            assert np.shape(ns[name]) == (int(n), int(d)), f"README says {name} is ({n}, {d})"
    printed = capsys.readouterr().out
    if "model" in ns:  # the API example: fit, transform, score, evaluate (printed), save and load
        import mmib

        assert isinstance(ns["model"], mmib.MultimodalModel) and ns["model"].method_ is not None
        assert "'accuracy'" in printed
        assert (tmp_path / "model.pt").is_file()
    if "load_my_data" in ns:  # the "add a data set" example registers its builder
        assert registry.DATASETS["my_data"].builder is ns["load_my_data"]
