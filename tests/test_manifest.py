"""mmib.manifest: the generated manifest module round-trips its data, holds plain data only, and ``--write`` /
``--check`` write and compare it (the check against the live registries: tests/test_cli_fast.py)."""

import ast

import pytest

import mmib.manifest as manifest


def _small():
    return {"methods": [{"name": "clip", "supervised": False, "capabilities": {"fuse": False, "score": True}}],
            "datasets": [{"name": "toy", "description": "a toy set", "options": {"n": 10, "views": (0, 2)}}],
            "commands": [{"module": "mmib.cli.bench", "commands": [["bench", "run a suite"]]}]}


def _exec(text):
    ns = {}
    exec(compile(text, "<manifest>", "exec"), ns)
    return {"methods": ns["METHODS"], "datasets": ns["DATASETS"], "commands": ns["COMMANDS"]}


def test_render_is_python_that_gives_the_manifest_back():
    m = _small()
    text = manifest.render(m)
    ast.parse(text)
    assert text.startswith('"""mmib\'s manifest') and "do not edit" in text.splitlines()[0]
    assert _exec(text) == m
    stored = manifest.load()
    assert _exec(manifest.render(stored)) == stored


def test_the_stored_file_is_exactly_the_rendering_of_what_it_holds():
    """The data file is generated, never edited by hand: rendering its own content gives it back byte for byte."""
    assert manifest.DATA_FILE.read_text() == manifest.render(manifest.load())


def test_literal_accepts_plain_data_only():
    for v in (1, 0.5, "x", None, True, (0, 2), [1, [2, "a"]], {"a": (1,)}):
        assert manifest._literal(v, "here") is v
    from pathlib import Path

    with pytest.raises(ValueError, match=r"data set 'toy', option 'p': PosixPath\('/x'\) is not plain data"):
        manifest._literal(Path("/x"), "data set 'toy', option 'p'")
    class Count(int):  # repr "3" reads back as an int, not as this type
        pass

    with pytest.raises(ValueError, match="here: 3 does not read back as itself from the manifest"):
        manifest._literal(Count(3), "here")
    with pytest.raises(ValueError, match="is not plain data"):
        manifest._literal(float("nan"), "here")
    with pytest.raises(ValueError, match="is not plain data"):
        manifest._literal(object(), "here")


def test_write_then_check(tmp_path, monkeypatch, capsys):
    data_file = tmp_path / "_manifest_data.py"
    current = _small()
    monkeypatch.setattr(manifest, "DATA_FILE", data_file)
    monkeypatch.setattr(manifest, "collect", lambda: current)
    assert manifest.main(["--check"]) == 1  # no file yet
    assert "is stale: run `python -m mmib.manifest --write`" in capsys.readouterr().err
    assert manifest.main(["--write"]) == 0
    assert capsys.readouterr().out.strip().endswith(": written")
    assert _exec(data_file.read_text()) == current
    stamp = data_file.stat().st_mtime_ns
    assert manifest.main(["--write"]) == 0 and capsys.readouterr().out.strip().endswith(": unchanged")
    assert data_file.stat().st_mtime_ns == stamp
    assert manifest.main(["--check"]) == 0 and "is up to date" in capsys.readouterr().out
    current["datasets"][0]["options"]["n"] = 11  # a changed option default
    assert manifest.main(["--check"]) == 1
    with pytest.raises(SystemExit) as e:
        manifest.main([])  # one of --write / --check
    assert e.value.code == 2


def test_collect_commands_lists_every_plugin_module_with_its_sub_commands():
    from mmib.cli import PLUGIN_MODULES

    got = manifest.collect_commands()
    assert [c["module"] for c in got] == list(PLUGIN_MODULES)
    names = {c["module"]: [n for n, _ in c["commands"]] for c in got}
    assert names["mmib.cli.eval"] == ["eval", "report"] and names["mmib.cli.bench"] == ["bench"]
    assert all(isinstance(h, str) and h for c in got for _, h in c["commands"])


def test_collect_datasets_records_options_and_the_listed_sets_details(monkeypatch):
    import mmib.data.registry as registry

    monkeypatch.setattr(registry, "dataset_names", lambda: ["sim_align", "rus_sim"])
    monkeypatch.setattr(manifest, "LISTED", {"rus_sim": ("numpy",)})
    got = {d["name"]: d for d in manifest.collect_datasets()}
    assert list(got) == ["sim_align", "rus_sim"]
    entry = registry.get_dataset_entry("sim_align")
    assert got["sim_align"]["options"] == dict(entry.options) and got["sim_align"]["description"] == entry.description
    assert "details" not in got["sim_align"]
    mods, task = manifest.modalities_text(registry.build_dataset("rus_sim"))
    assert got["rus_sim"]["details"] == {"modalities": mods, "task": task, "needs": ["numpy"]}
    assert mods.startswith("x1 vector (32,)")


def test_collect_methods_records_supervision_and_capabilities(monkeypatch):
    import mmib.methods.registry as registry

    monkeypatch.setattr(registry, "method_names", lambda: ["clip", "concat"])
    got = manifest.collect_methods()
    assert [m["name"] for m in got] == ["clip", "concat"]
    for m in got:
        cls = registry.get_method_class(m["name"])
        assert m["supervised"] is bool(cls.supervised)
        assert m["capabilities"] == {k: bool(v) for k, v in cls.capabilities().items()}
    assert got[0]["supervised"] is False and got[1]["supervised"] is True
