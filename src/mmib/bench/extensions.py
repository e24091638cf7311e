"""What a suite adds to plain training + evaluation: per-run callbacks, evaluation on other data, study analyses as
registered protocols, and the modules that register them.

* ``callbacks:`` (suite level and per method variant): Lightning callbacks built fresh for every run, each an import
  path ``"package.module:factory"`` or ``{target: "package.module:factory", <keyword arguments>}``; a factory is a
  class or a function returning a callback. They run inside the engine's ``fit`` and may write into the run folder
  (``trainer.default_root_dir``), e.g. a per-epoch trace. They enter the runs' fingerprints.
* ``eval_data:`` (per data entry): the protocols evaluate on the same data config with other options (e.g. train on
  CoMM's biased pairs, probe on unbiased data: ``eval_data: {options: {biased: false}}``), split with the run's seed.
* :func:`register_protocol` adds a study analysis as an evaluation protocol (``protocols: [{my_analysis: {...}}]``);
  ``imports:`` lists the modules a suite needs imported first (where its protocols register themselves).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

from mmib.errors import MMIBError, UnknownNameError


def register_protocol(name: str, fn: Callable | None = None, *, replace: bool = False):
    """Register ``fn(ctx, options) -> result`` as evaluation protocol ``name`` (usable as a decorator).

    ``ctx`` is :class:`mmib.eval.protocols.EvalContext` (the method, the data module, the seed, features of a split);
    the result is a dict ``{"protocol": name, "rows": [{"id", "label", "source", "metrics": {...}}], "notes": [],
    "primary_metric": ...}`` like the built-in protocols', so the bench aggregates and reports it.
    """
    from mmib.eval.protocols import PROTOCOLS

    def add(f: Callable) -> Callable:
        if not replace and name in PROTOCOLS and PROTOCOLS[name] is not f:
            raise MMIBError(f"protocol '{name}' is registered already (replace=True to replace it)")
        PROTOCOLS[name] = f
        return f

    return add if fn is None else add(fn)


def import_modules(modules: Any, where: str) -> list[str]:
    if modules is None:
        return []
    if isinstance(modules, str):
        modules = [modules]
    if not isinstance(modules, (list, tuple)) or not all(isinstance(m, str) for m in modules):
        raise MMIBError(f"{where}: expected a list of module names, got {modules!r}")
    for m in modules:
        try:
            importlib.import_module(m)
        except ImportError as e:
            raise MMIBError(f"{where}: cannot import '{m}' ({e})") from None
    return list(modules)


def _resolve(target: str, where: str) -> Callable:
    mod, sep, attr = target.partition(":")
    if not sep or not mod or not attr:
        raise MMIBError(f"{where}: '{target}' is not an import path 'package.module:factory'")
    try:
        obj = importlib.import_module(mod)
    except ImportError as e:
        raise MMIBError(f"{where}: cannot import '{mod}' ({e})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise MMIBError(f"{where}: '{mod}' has no '{attr}'")
        obj = getattr(obj, part)
    if not callable(obj):
        raise MMIBError(f"{where}: '{target}' is not callable")
    return obj


def parse_callbacks(value: Any, where: str) -> list[dict[str, Any]]:
    """Validated callback specs ``[{"target": "pkg.mod:factory", **kwargs}]`` (the targets are imported now)."""
    if value is None:
        return []
    if isinstance(value, (str, Mapping)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise MMIBError(f"{where}: expected a list of callbacks")
    out = []
    for i, c in enumerate(value):
        spec = {"target": c} if isinstance(c, str) else dict(c) if isinstance(c, Mapping) else None
        if spec is None or not isinstance(spec.get("target"), str):
            raise MMIBError(f"{where}[{i}]: expected 'package.module:factory' or {{target: ..., <options>}}")
        _resolve(spec["target"], f"{where}[{i}]")
        out.append(spec)
    return out


def build_callbacks(specs: list[dict[str, Any]]) -> list:
    out = []
    for spec in specs:
        kwargs = {k: v for k, v in spec.items() if k != "target"}
        out.append(_resolve(spec["target"], "callbacks")(**kwargs))
    return out


EVAL_DATA_KEYS = ("options", "config")


def parse_eval_data(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise MMIBError(f"{where}: expected {{options: {{...}}, config: {{...}}}}")
    for k in value:
        if k not in EVAL_DATA_KEYS:
            raise UnknownNameError(f"key of {where}", str(k), list(EVAL_DATA_KEYS))
    return {"options": dict(value.get("options") or {}), "config": dict(value.get("config") or {})}


def expand_sweep(entry: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    """A method entry with ``sweep: {option: [values]}`` (one method option, under ``method.``) → one variant per
    value, named ``<name>-<option>-<value>`` (the option's last dotted part)."""
    sweep = entry.get("sweep")
    base = {k: v for k, v in entry.items() if k != "sweep"}
    if sweep is None:
        return [base]
    if not isinstance(sweep, Mapping) or len(sweep) != 1:
        raise MMIBError(f"{where}.sweep: expected one method option and its values, e.g. {{objective.beta: [0, 0.1]}}")
    (key, values), = sweep.items()
    if not isinstance(values, (list, tuple)) or not values:
        raise MMIBError(f"{where}.sweep.{key}: expected a non-empty list of values")
    name = str(base.get("name") or base.get("method"))
    out = []
    for v in values:
        tag = str(v).replace(" ", "")
        out.append({**base, "name": f"{name}-{str(key).rsplit('.', 1)[-1]}-{tag}", "method": base.get("method") or name,
                    "overrides": {**dict(base.get("overrides") or {}), str(key): v}})
    return out
