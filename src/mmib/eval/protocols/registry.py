"""The protocols mmib ships, gathered into one registry (:data:`PROTOCOLS`), and how an evaluation names and runs
them: :class:`ProtocolSpec`, :func:`parse_protocols`, :func:`run_protocol`. Study analyses join the same registry
with :func:`mmib.bench.extensions.register_protocol`."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mmib.errors import MMIBError, UnknownNameError
from mmib.eval.protocols.base import ProtocolRegistry
from mmib.eval.protocols.info_probe import INFO_PROBE
from mmib.eval.protocols.oom import OOM
from mmib.eval.protocols.pair_probe import PAIR_PROBE
from mmib.eval.protocols.plots import PLOTS
from mmib.eval.protocols.probe import PROBE
from mmib.eval.protocols.retrieval import RETRIEVAL
from mmib.eval.protocols.subsets import SUBSETS

if TYPE_CHECKING:
    from mmib.eval.protocols.context import EvalContext

#: every protocol by name (``PROTOCOLS[name](ctx, options)``; ``PROTOCOLS.unit(name)``: its :class:`Protocol`)
PROTOCOLS = ProtocolRegistry((PROBE, PAIR_PROBE, SUBSETS, RETRIEVAL, INFO_PROBE, PLOTS, OOM))

#: the protocols mmib ships (the others are study analyses registered by suites)
BUILTIN_PROTOCOLS = tuple(PROTOCOLS)

#: protocols ``mmib eval`` runs when none are named
DEFAULT_PROTOCOLS = ("probe", "subsets", "retrieval", "info_probe", "plots")


@dataclass
class ProtocolSpec:
    """One protocol to run: its kind, a name (unique within an evaluation; default the kind) and its options."""

    kind: str
    name: str
    options: dict[str, Any] = field(default_factory=dict)


def parse_protocols(spec: Any) -> list[ProtocolSpec]:
    """Protocols from a suite or the command line. Accepted forms of each entry:

    * ``"probe"`` — a kind with its default options;
    * ``{"subsets": {"probe": "mlp"}}`` — one key, the kind, mapping to its options;
    * ``{"protocol": "probe", "name": "probe_mlp", "probes": ["mlp"]}`` — kind, optional name, options inline.
    """
    if spec is None:
        spec = list(DEFAULT_PROTOCOLS)
    if isinstance(spec, str):
        spec = [s.strip() for s in spec.split(",") if s.strip()]
    if not isinstance(spec, (list, tuple)):
        raise MMIBError(f"protocols: expected a list, got {type(spec).__name__}")
    out: list[ProtocolSpec] = []
    for entry in spec:
        if isinstance(entry, str):
            kind, name, options = entry, entry, {}
        elif isinstance(entry, Mapping) and "protocol" in entry:
            d = dict(entry)
            kind = d.pop("protocol")
            name = d.pop("name", kind)
            options = d
        elif isinstance(entry, Mapping) and len(entry) == 1:
            kind, options = next(iter(entry.items()))
            name, options = kind, dict(options or {})
        else:
            raise MMIBError(f"protocols: cannot read entry {entry!r}; expected 'probe', {{probe: {{...}}}} or "
                            "{protocol: probe, name: ..., <options>}")
        if kind not in PROTOCOLS:
            raise UnknownNameError("protocol", str(kind), list(PROTOCOLS))
        if any(p.name == name for p in out):
            raise MMIBError(f"protocols: the name '{name}' is used twice; give one of them a 'name'")
        out.append(ProtocolSpec(kind, str(name), dict(options)))
    return out


def run_protocol(ctx: EvalContext, spec: ProtocolSpec) -> dict[str, Any]:
    """The protocol's result, with its name and wall seconds; its thread's CPU seconds go to ``ctx.cpu``."""
    t0, c0 = time.time(), time.thread_time()
    try:
        res = PROTOCOLS[spec.kind](ctx, spec.options)
    except Exception as e:  # the protocol's name in the traceback, however many protocols ran at once
        e.add_note(f"(in protocol '{spec.name}')")
        raise
    res["name"] = spec.name
    res["seconds"] = round(time.time() - t0, 3)
    ctx.cpu[spec.name] = round(time.thread_time() - c0, 3)
    return res
