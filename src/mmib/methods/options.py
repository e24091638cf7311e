"""Typed method options: each method declares a frozen dataclass of its options (``Options``), which owns their
defaults; :meth:`mmib.methods.Method.__init__` builds it from the method's config (``self.opts``), so the method reads
``self.opts.temperature`` instead of ``cfg.get("temperature", 0.07)``.

* A block of options (``objective``, ``optim``, ``fusion``, ...) is a nested dataclass, built from the nested mapping.
* A key of the config that the dataclass lacks is a one-line :class:`~mmib.errors.UnknownNameError` naming its path
  and the valid keys; a value of the wrong type a one-line :class:`~mmib.errors.MMIBError` naming its path, the type
  expected and the value. ``name`` (the method's registered name) is always allowed at the top.
* A block may keep the keys it does not name: a ``dict`` field with ``metadata={"extra": True}`` collects them
  (:class:`OptimOptions`: an optimizer's own options), and :func:`options_dict` puts them back beside the others.
* Supported field types: ``bool``, ``int`` (an integral float is accepted), ``float`` (an int or a numeric string is
  accepted, as ``float()`` did), ``str``, ``Literal[...]`` (a closed set of words), an :class:`enum.Enum` (typed flags
  such as an ablation: built from its value), ``X | None``, ``list[X]`` / ``tuple[X, ...]``, a nested dataclass, and
  ``Any`` / ``dict[...]`` (kept as given: free-form blocks such as ``augment``).
* The packaged YAML of the method (``src/mmib/conf/method/<name>.yaml``) lists every key with the same value as the
  dataclass's default; ``tests/methods/test_options.py`` compares them key by key. A default that the YAML writes as
  an interpolation (``seed: ${seed}``) says so with ``field(..., metadata={"yaml": "${seed}"})``; a key that the YAML
  leaves out on purpose (IBMA's ``fusion.kind``, which the suites add with ``+method.fusion.kind=concat``) with
  ``metadata={"yaml_optional": True}``.

Example:
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Opts:
    ...     head_layers: int = 3
    ...     temperature: float = 0.07
    >>> build_options(Opts, {"name": "x", "temperature": 1}, "method 'x'")
    Opts(head_layers=3, temperature=1.0)
    >>> build_options(Opts, {"temprature": 0.1}, "method 'x'")
    Traceback (most recent call last):
    ...
    mmib.errors.UnknownNameError: unknown option of method 'x' 'temprature'; did you mean 'temperature'? valid: head_layers, temperature
    >>> build_options(Opts, {"head_layers": "three"}, "method 'x'")
    Traceback (most recent call last):
    ...
    mmib.errors.MMIBError: method 'x': method.head_layers must be an integer, got 'three'
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeVar, Union

from mmib.errors import MMIBError, UnknownNameError

__all__ = ["OptimOptions", "TemperatureOptimOptions", "build_options", "optim_field", "options_dict"]

T = TypeVar("T")

#: top-level keys every method config may carry besides its options
RESERVED = ("name",)


def build_options(cls: type[T], values: Mapping[str, Any] | None, where: str, prefix: str = "") -> T:
    """The options ``cls`` (a dataclass) from ``values``: given keys converted and checked, missing keys at their
    defaults. ``where`` names the owner in errors (``"method 'clip'"``); ``prefix`` is the path of ``values`` in the
    method config (``"objective."`` for a block)."""
    values = {} if values is None else values
    if not isinstance(values, Mapping):
        raise MMIBError(f"{where}: method{'.' + prefix.rstrip('.') if prefix else ''} must be a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and not f.metadata.get("extra")}
    extra = [f.name for f in dataclasses.fields(cls) if f.metadata.get("extra")]
    hints = typing.get_type_hints(cls)
    unknown = [str(k) for k in values if k not in fields and not (not prefix and k in RESERVED)]
    if unknown and not extra:
        raise UnknownNameError(f"option of {where}", prefix + unknown[0], [prefix + k for k in fields])
    kwargs = {k: _convert(hints[k], v, where, prefix + k) for k, v in values.items() if k in fields}
    if extra:  # the block keeps the keys it does not name, as given (e.g. an optimizer's momentum)
        kwargs[extra[0]] = {k: values[k] for k in unknown}
    return cls(**kwargs)


def options_dict(opts: Any) -> dict[str, Any]:
    """The options as plain values, nested blocks as dicts, flags as their config words (what the YAML writes)."""
    out = {}
    for f in dataclasses.fields(opts):
        v = getattr(opts, f.name)
        if f.metadata.get("extra"):
            out.update(v)
        else:
            out[f.name] = _plain(v)
    return out


def _plain(v: Any) -> Any:
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return options_dict(v)
    if isinstance(v, enum.Enum):
        return v.value
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in typing.get_args(tp))
    if origin in (list, tuple, Sequence):
        return "a list"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "one of " + ", ".join(repr(m.value) for m in tp)
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return _WORDS.get(tp, getattr(tp, "__name__", str(tp)))


def _bad(where: str, path: str, tp: Any, value: Any) -> MMIBError:
    return MMIBError(f"{where}: method.{path} must be {_describe(tp)}, got {value!r}")


def _convert(tp: Any, value: Any, where: str, path: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any or tp is object:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _convert(a, value, where, path)
            except MMIBError:
                continue
        raise _bad(where, path, tp, value)
    if origin is Literal:
        if any(type(value) is type(a) and value == a for a in typing.get_args(tp)):
            return value
        raise _bad(where, path, tp, value)
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise _bad(where, path, tp, value)
        return dict(value)
    if origin in (list, tuple, Sequence):
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
            raise _bad(where, path, tp, value)
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        item = args[0] if args else Any
        items = [_convert(item, v, where, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return build_options(tp, value, where, path + ".")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if isinstance(value, tp):
            return value
        try:
            return tp(value)
        except ValueError:
            raise _bad(where, path, tp, value) from None
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _bad(where, path, tp, value)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _bad(where, path, tp, value)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise _bad(where, path, tp, value)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _bad(where, path, tp, value)
    raise TypeError(f"{where}: option {path} has a type the options cannot check: {tp!r}")


# ---------------------------------------------------------------------------------------------- the optimizer block
@dataclasses.dataclass(frozen=True)
class OptimOptions:
    """``method.optim`` (:meth:`mmib.methods.Method.configure_optimizers`): the optimizer, its learning rate and
    weight decay; any other key of the block (``momentum``, ``betas``, ...) is passed to the optimizer as given
    (``extra``; the optimizer refuses one it does not take)."""

    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1.0e-3
    weight_decay: float = 0.0
    extra: dict[str, Any] = dataclasses.field(default_factory=dict, metadata={"extra": True})


@dataclasses.dataclass(frozen=True)
class TemperatureOptimOptions(OptimOptions):
    """``method.optim`` of a method with a learned temperature: ``temperature_lr`` gives every learned temperature
    its own learning rate (and no weight decay); null: ``lr``."""

    temperature_lr: float | None = None


def optim_field(cls: type = OptimOptions, **defaults: Any) -> Any:
    """A dataclass field holding the ``optim`` block with this method's defaults: ``optim_field(name="adamw",
    lr=3e-4, weight_decay=1e-4)``."""
    return dataclasses.field(default_factory=lambda: cls(**defaults))
