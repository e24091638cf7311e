"""What every protocol is made of: the :class:`Protocol` record (its name, options, run, tables, comparison metrics and
plots), the registry that holds the records by name, and the helpers the protocols share (options parsing, an empty
result, the primary metric of a task).

This module and the protocol modules import nothing heavy at import time (no torch): ``mmib report`` reads the
tables and comparison metrics of the protocols through the registry without loading torch; each protocol imports what
its ``run`` needs inside it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from mmib.errors import MMIBError, UnknownNameError
from mmib.eval.tables import TableData, generic_tables

if TYPE_CHECKING:
    from mmib.eval.protocols.context import EvalContext

#: ``run(ctx, options) -> result``: a protocol's computation (see :mod:`mmib.eval.protocols` for the result's shape)
RunFn = Callable[["EvalContext", "Mapping[str, Any] | None"], dict]

#: the values of :attr:`Protocol.compare` besides a tuple of metric names: every metric of the rows, or the
#: result's ``primary_metric``
COMPARE_ALL, COMPARE_PRIMARY = "all", "primary"


@dataclass(frozen=True)
class Protocol:
    """One evaluation protocol as a unit.

    * ``name``: the kind named in suites and on the command line (``--protocols probe,subsets``);
    * ``run``: ``run(ctx, options) -> result`` (an :class:`~mmib.eval.protocols.context.EvalContext`, a mapping of
      options or None);
    * ``options``: its options dataclass (parsed with :func:`parse_options`; None: the protocol reads its own);
    * ``tables``: ``tables(result) -> [TableData]``, the tables of ``report.md`` and of the console (default: one
      generic table of rows × metrics);
    * ``compare``: the metrics ``mmib report RUN RUN...`` puts side by side: :data:`COMPARE_ALL`,
      :data:`COMPARE_PRIMARY`, a tuple of metric names, or None (not compared);
    * ``plots``: the figures it may write (``plots/<name>.png``; the keys of its result's ``plots``);
    * ``concurrent``: whether it may run in a thread beside other protocols (``evaluate(jobs=...)``): it reaches
      the method only through ``ctx.features`` / ``ctx.run_method``, draws its figures with ``ctx.draw``, and
      draws no numbers from torch's or numpy's global generators. False (the default, e.g. a study analysis):
      it runs alone, after the concurrent ones.
    """

    name: str
    run: RunFn
    options: type | None = None
    tables: Callable[[Mapping[str, Any]], list[TableData]] = generic_tables
    compare: str | tuple[str, ...] | None = None
    plots: tuple[str, ...] = ()
    concurrent: bool = False


class ProtocolRegistry(MutableMapping):
    """The protocols by name. As a mapping it holds each protocol's ``run`` function (``PROTOCOLS[name](ctx,
    options)``); assigning a plain function registers a protocol with generic tables that is not compared (the form
    :func:`mmib.bench.extensions.register_protocol` uses for study analyses). :meth:`unit` gives the whole
    :class:`Protocol` record and :meth:`add` registers one."""

    def __init__(self, protocols: tuple[Protocol, ...] = ()):
        self._units: dict[str, Protocol] = {}
        for p in protocols:
            self.add(p)

    def add(self, protocol: Protocol, replace: bool = False) -> Protocol:
        if not isinstance(protocol, Protocol):
            raise MMIBError(f"protocols: expected a Protocol record, got {type(protocol).__name__}")
        if not replace and protocol.name in self._units and self._units[protocol.name] is not protocol:
            raise MMIBError(f"protocol '{protocol.name}' is registered already (replace=True to replace it)")
        self._units[protocol.name] = protocol
        return protocol

    def unit(self, name: str) -> Protocol | None:
        return self._units.get(name)

    def __getitem__(self, name: str) -> RunFn:
        return self._units[name].run

    def __setitem__(self, name: str, run: RunFn) -> None:
        if not callable(run):
            raise MMIBError(f"protocol '{name}': expected a function run(ctx, options), got {type(run).__name__}")
        self._units[name] = Protocol(name, run)

    def __delitem__(self, name: str) -> None:
        del self._units[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._units)

    def __len__(self) -> int:
        return len(self._units)

    def __repr__(self) -> str:
        return f"ProtocolRegistry({', '.join(self._units)})"


def parse_options(cls: type, options: Mapping[str, Any] | None, protocol: str) -> Any:
    """The options dataclass of a protocol; an unknown key is an error naming the valid ones. A class's ``ALIASES``
    ({alias: option}) are accepted too; an alias given beside its option wins (the CLI always sets the option)."""
    opts = dict(options or {})
    aliases: dict[str, str] = getattr(cls, "ALIASES", {})
    for alias, target in aliases.items():
        if alias in opts:
            value = opts.pop(alias)
            opts[target] = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value
    valid = [f.name for f in fields(cls)]
    for k in opts:
        if k not in valid:
            raise UnknownNameError(f"option of protocol '{protocol}'", k, valid + list(aliases))
    return cls(**opts)


def check_probe_kind(kind: str) -> None:
    from mmib.eval.probe import PROBES

    if kind not in PROBES:
        raise UnknownNameError("probe", kind, list(PROBES))


def new_result(protocol: str, options: Any) -> dict[str, Any]:
    """An empty result of ``protocol`` with its parsed options."""
    return {"protocol": protocol, "options": asdict(options), "rows": [], "notes": [], "plots": {}}


def primary_metric(task: str) -> str:
    return "accuracy" if task == "classification" else "mse"
