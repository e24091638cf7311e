"""The ``mmib`` command.

    mmib train [key=value ...]          train a method (Hydra overrides: method=clip data.views=[0,2,5] ...)
    mmib eval RUN_DIR [--probe ...]     evaluate a trained run (mmib.eval.cli)
    mmib demo [key=value ...]           pretrain CLIP on the 6-view UCI digits and compare probes
    mmib data list                      data sets with their modalities, shapes and tasks
    mmib methods                        the registered methods
    mmib experiments                    the paper recipes (train one with experiment=<name>)

Errors in what the user typed (unknown method, data set, modality, config key) print one line that lists the
valid names and exit with code 2, without a traceback.
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
PLUGIN_MODULES = ("mmib.info.cli", "mmib.data.physio.cli", "mmib.eval.cli", "mmib.bench.cli")


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
    base = Path(__file__).parent.joinpath(*parts)
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _cmd_train(args: argparse.Namespace) -> int:
    from mmib.config import compose_config
    from mmib.engine import train

    cfg = compose_config(args.overrides)
    res = train(cfg)
    from mmib.utils.dist import launch_rank

    if launch_rank() != 0:  # rank 0 alone reports
        return 0
    print(f"run folder: {res.run_dir}")
    print(f"checkpoint: {res.run_dir / 'checkpoints' / 'last.ckpt'}")
    keys = sorted(k for k in res.metrics if k.endswith("loss") or k.endswith("loss_epoch"))
    for k in keys:
        print(f"{k}: {res.metrics[k]:.4f}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from mmib.demo import print_table, run_demo

    r = run_demo(args.out, max_epochs=args.epochs, seed=args.seed, progress=not args.no_progress,
                 overrides=args.overrides)
    if r.get("skipped_on_rank"):  # several processes (trainer.devices=2 ...): rank 0 alone reports
        return 0
    print_table(r)
    print(f"report: {args.out}/report.md  results: {args.out}/results.json")
    return 0


def _built_cells(name: str) -> tuple[str, str]:
    """The modalities and task cells of data set ``name``, from building it (imports torch)."""
    try:
        from mmib.data.registry import build_dataset
        from mmib.manifest import modalities_text

        return modalities_text(build_dataset(name))
    except Exception as err:  # a data set whose files or extras are absent still lists
        return f"(not loadable here: {str(err).splitlines()[0][:80]})", ""


def _cmd_data_list(args: argparse.Namespace) -> int:
    import importlib.util

    from rich.console import Console
    from rich.table import Table

    t = Table(title="mmib data sets (option defaults; build with data=<name>)")
    for c in ("name", "description", "options", "modalities (kind shape)", "task"):
        t.add_column(c)
    if args.details:  # builds every data set: the registry itself
        from mmib.data.registry import dataset_names, get_dataset_entry

        rows = [(n, get_dataset_entry(n).description, get_dataset_entry(n).options, None) for n in dataset_names()]
    else:  # the manifest (mmib.manifest), checked against the registry by tests/test_cli_fast.py
        from mmib.manifest import load

        rows = [(d["name"], d["description"], d["options"], d.get("details")) for d in load()["datasets"]]
    for name, description, options, details in rows:
        # building a data set can take a while (simulators, MNE pipelines): the default listing shows mfeat built
        mods, task = "(--details)", "(--details)"
        if args.details:
            mods, task = _built_cells(name)
        elif details is not None:
            if all(importlib.util.find_spec(m) is not None for m in details["needs"]):
                mods, task = details["modalities"], details["task"]
            else:  # what it lacks is named by building it, as before
                mods, task = _built_cells(name)
        opts = ", ".join(f"{k}={v}" for k, v in options.items())
        t.add_row(name, description, opts, mods, task)
    Console(width=200).print(t)
    return 0


def _cmd_data_check(args: argparse.Namespace) -> int:
    import yaml

    from mmib.data.loaders.check import check_file

    options = {}
    for o in args.option:
        if "=" not in o:
            raise MMIBError(f"--option '{o}' is not of the form key=value")
        k, v = o.split("=", 1)
        if k == "trust_pickle" and v.strip().lower() not in ("true", "false"):  # YAML would read yes/on/1 as true
            raise MMIBError(f"--option trust_pickle={v}: expected true or false")
        options[k] = yaml.safe_load(v)
    print(check_file(args.path, args.format, **options))
    return 0


def _cmd_methods(args: argparse.Namespace) -> int:
    from mmib.manifest import load  # checked against the method registry by tests/test_cli_fast.py

    for m in load()["methods"]:
        caps = [k for k, v in m["capabilities"].items() if v]
        sup = "supervised" if m["supervised"] else "self-supervised"
        print(f"{m['name']:<14} {sup:<16} {', '.join(caps)}")
    return 0


def _cmd_experiments(args: argparse.Namespace) -> int:
    import yaml

    folder = Path(__file__).parent / "conf" / "experiment"  # mmib.config.CONF_DIR, without importing OmegaConf
    for name in sorted(p.stem for p in folder.glob("*.yaml")):
        d = yaml.safe_load((folder / f"{name}.yaml").read_text()) or {}
        picks = {}
        for entry in d.get("defaults") or []:
            if isinstance(entry, dict):
                for k, v in entry.items():
                    picks[k.replace("override ", "").strip().lstrip("/")] = v
        method = (d.get("method") or {}).get("name") or picks.get("method", "?")
        source = (d.get("paper") or {}).get("source", "—")
        print(f"{name:<26} {method:<13} {picks.get('data', '?'):<13} {source}")
    return 0


def build_parser(lazy: bool = True) -> argparse.ArgumentParser:
    """The ``mmib`` parser. ``lazy``: a plugin module (:data:`PLUGIN_MODULES`) is imported only when one of its
    commands is chosen, so that ``mmib --help`` and the listings import neither torch nor Lightning."""
    p = _Parser(prog="mmib", description="Multimodal representation learning with information-theoretic objectives")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser, action=_LazySubparsers)

    t = sub.add_parser("train", help="train a method (Hydra overrides key=value)")
    t.add_argument("overrides", nargs="*", help="e.g. method=clip data=mfeat data.views=[0,2,5] trainer.max_epochs=5")
    t.set_defaults(func=_cmd_train)

    d = sub.add_parser("demo", help="pretrain CLIP on the 6-view UCI digits and compare probes",
                       description="Run the packaged `demo` bench suite: pretrain pairwise CLIP on the 6-view UCI "
                                   "digits, then probe, modality subsets, retrieval and plots; writes "
                                   "<out>/report.md and <out>/results.json. Trailing key=value arguments are config "
                                   "overrides of the run, as for `mmib train`, e.g. `mmib demo trainer.devices=2 "
                                   "trainer.strategy=ddp trainer.accelerator=cpu` (rank 0 alone evaluates and "
                                   "writes) or `mmib demo data.batch_size=128`.")
    d.add_argument("--out", default="runs/demo")
    d.add_argument("--epochs", type=int, default=30)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--no-progress", action="store_true")
    d.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="config overrides of the demo run (Hydra style), e.g. trainer.devices=2 trainer.strategy=ddp "
                        "method.objective.gather_distributed=true")
    d.set_defaults(func=_cmd_demo)

    data = sub.add_parser("data", help="data sets")
    dsub = data.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    dl = dsub.add_parser("list", help="data sets with their modalities, shapes and tasks")
    dl.add_argument("--details", action="store_true", help="build every data set to show its modalities")
    dl.set_defaults(func=_cmd_data_list)
    dc = dsub.add_parser("check", help="validate a data file in a supported format and print a summary")
    dc.add_argument("path", help="file or folder")
    dc.add_argument("--format", required=True, help="mosi | mosei | urfunny | mustard | vision_touch | mujoco_push | "
                    "wesad | mimic | generic")
    dc.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                    help="loader option, e.g. --option label_mode=7class (repeatable)")
    dc.set_defaults(func=_cmd_data_check)

    m = sub.add_parser("methods", help="the registered methods")
    m.set_defaults(func=_cmd_methods)

    x = sub.add_parser("experiments", help="the paper recipes: name, method, data set, paper source "
                                           "(train one with `mmib train experiment=<name>`)")
    x.set_defaults(func=_cmd_experiments)

    commands: dict[str, list] = {}
    if lazy:
        from mmib.manifest import load

        commands = {c["module"]: c["commands"] for c in load()["commands"]}
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


if __name__ == "__main__":
    sys.exit(main())
