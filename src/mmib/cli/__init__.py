"""The ``mmib`` command: every command of mmib lives in this package (the top layer, ``docs/guide/layers.md``).

    mmib train [key=value ...]          train a method (Hydra overrides: method=clip data.views=[0,2,5] ...)
    mmib eval RUN_DIR [--probe ...]     evaluate a trained run (mmib.cli.eval)
    mmib demo [key=value ...]           pretrain CLIP on the 6-view UCI digits and compare probes
    mmib data list                      data sets with their modalities, shapes and tasks
    mmib methods                        the registered methods
    mmib experiments                    the paper recipes (train one with experiment=<name>)

Errors in what the user typed (unknown method, data set, modality, config key) print one line that lists the
valid names and exit with code 2, without a traceback.

Modules: :mod:`~mmib.cli.commands` (train, demo, data, methods, experiments), and the plugins imported only when one
of their commands is chosen (:data:`PLUGIN_MODULES`): :mod:`~mmib.cli.info` (info validate), :mod:`~mmib.cli.physio`
(physio simulate / preprocess), :mod:`~mmib.cli.eval` (eval, report), :mod:`~mmib.cli.bench` (bench). A command
module parses arguments, calls the library and prints; what it computes belongs to the library's layers.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from mmib.errors import MMIBError

#: modules that add their own sub-commands through ``register_cli(subparsers)``; the parser imports one only when
#: one of its commands is chosen (their names and help come from the manifest, :mod:`mmib.manifest`)
PLUGIN_MODULES = ("mmib.cli.info", "mmib.cli.physio", "mmib.cli.eval", "mmib.cli.bench")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit code 2
        self.exit(2, f"{self.prog}: error: {message}\n")


class _LazySubparsers(argparse._SubParsersAction):
    """Sub-commands whose parsers are built on first use: a plugin command is a placeholder (name and help from the
    manifest) until it is chosen, then its module is imported and its ``register_cli`` builds the real parsers."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._lazy: dict[str, str] = {}  # placeholder command -> plugin module

    def add_placeholder(self, name: str, help: str | None, module: str) -> None:
        self.add_parser(name, **({} if help is None else {"help": help}))
        self._lazy[name] = module

    def load(self, module: str) -> None:
        """Import ``module`` and replace its placeholders by the parsers its ``register_cli`` builds (same order)."""
        tmp = argparse._SubParsersAction(option_strings=[], prog=self._prog_prefix, parser_class=self._parser_class)
        importlib.import_module(module).register_cli(tmp)
        helps = {a.dest: a for a in tmp._choices_actions}
        for name, parser in tmp._name_parser_map.items():
            self._name_parser_map[name] = parser  # a placeholder keeps its place in the order
            self._lazy.pop(name, None)
            if name in helps:
                old = [i for i, a in enumerate(self._choices_actions) if a.dest == name]
                if old:
                    self._choices_actions[old[0]] = helps[name]
                else:
                    self._choices_actions.append(helps[name])

    def __call__(self, parser, namespace, values, option_string=None):
        if values and values[0] in self._lazy:
            self.load(self._lazy[values[0]])
        super().__call__(parser, namespace, values, option_string)


def _module_present(module: str) -> bool:
    """Whether ``mmib.<...>`` has its source file here, without importing its packages (``find_spec`` would)."""
    parts = module.split(".")[1:]
    base = Path(__file__).parent.parent.joinpath(*parts)
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def build_parser(lazy: bool = True) -> argparse.ArgumentParser:
    """The ``mmib`` parser. ``lazy``: a plugin module (:data:`PLUGIN_MODULES`) is imported only when one of its
    commands is chosen, so that ``mmib --help`` and the listings import neither torch nor Lightning."""
    p = _Parser(prog="mmib", description="Multimodal representation learning with information-theoretic objectives")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser, action=_LazySubparsers)

    from mmib.cli.commands import load_manifest, register_cli

    register_cli(sub)

    commands: dict[str, list] = {}
    if lazy:
        commands = {c["module"]: c["commands"] for c in load_manifest()["commands"]}
    for mod in PLUGIN_MODULES:
        if not _module_present(mod):
            continue  # that part of mmib is not there
        if mod in commands:
            for name, help_text in commands[mod]:
                sub.add_placeholder(name, help_text, mod)
        else:  # not in the manifest (or not lazy): build its parsers now
            sub.load(mod)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except MMIBError as e:  # DataValidationError is one
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"mmib: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        ckpt = getattr(e, "checkpoint", None)
        if ckpt is not None:
            print("mmib: interrupted (resume with resume=last)", file=sys.stderr)
        elif getattr(e, "run_dir", None) is not None:
            print(f"mmib: interrupted before the run's first checkpoint; nothing to resume (start again with "
                  f"overwrite=true, which moves '{e.run_dir}' aside)", file=sys.stderr)
        else:
            print("mmib: interrupted", file=sys.stderr)
        return 130
