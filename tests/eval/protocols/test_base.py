"""mmib.eval.protocols.base: the protocol registry as a mapping of run functions and of Protocol records (add,
replace, plain functions), options parsing with aliases, and the shared helpers."""

from dataclasses import dataclass, field

import pytest

from mmib.errors import MMIBError, UnknownNameError
from mmib.eval.protocols.base import (
    Protocol,
    ProtocolRegistry,
    check_probe_kind,
    new_result,
    parse_options,
    primary_metric,
)
from mmib.eval.tables import generic_tables


def _run(ctx, options=None):
    return {"protocol": "x", "rows": []}


def test_registry_holds_records_and_run_functions():
    a = Protocol("a", _run, compare=("acc",))
    reg = ProtocolRegistry((a,))
    assert list(reg) == ["a"] and len(reg) == 1 and reg["a"] is _run and reg.unit("a") is a
    assert reg.add(a) is a  # the same record again is not a conflict
    with pytest.raises(MMIBError, match="protocol 'a' is registered already"):
        reg.add(Protocol("a", _run))
    b = reg.add(Protocol("a", _run, compare="all"), replace=True)
    assert reg.unit("a") is b
    with pytest.raises(MMIBError, match="expected a Protocol record, got function"):
        reg.add(_run)
    reg["plain"] = _run  # a plain function: generic tables, not compared
    p = reg.unit("plain")
    assert (p.name, p.run, p.tables, p.compare, p.options, p.plots) == ("plain", _run, generic_tables, None, None, ())
    with pytest.raises(MMIBError, match="protocol 'bad': expected a function run"):
        reg["bad"] = 3
    del reg["plain"]
    assert reg.unit("plain") is None and repr(reg) == "ProtocolRegistry(a)"


@dataclass
class _Opts:
    ALIASES = {"representation": "representations"}
    representations: list = field(default_factory=lambda: ["concat"])
    k: int = 1


def test_parse_options_with_aliases_and_unknown_keys():
    assert parse_options(_Opts, None, "p") == _Opts()
    assert parse_options(_Opts, {"k": 3}, "p").k == 3
    assert parse_options(_Opts, {"representation": "a, b,"}, "p").representations == ["a", "b"]
    # the alias beside its option wins (the CLI always sets the option)
    assert parse_options(_Opts, {"representations": ["x"], "representation": ["y"]}, "p").representations == ["y"]
    with pytest.raises(UnknownNameError, match=r"unknown option of protocol 'p' 'kk'; did you mean 'k'\?.*"
                                                r"valid: k, representation, representations"):
        parse_options(_Opts, {"kk": 1}, "p")


def test_shared_helpers():
    assert new_result("probe", _Opts()) == {"protocol": "probe", "options": {"representations": ["concat"], "k": 1},
                                            "rows": [], "notes": [], "plots": {}}
    assert primary_metric("classification") == "accuracy" and primary_metric("regression") == "mse"
    check_probe_kind("mlp")
    with pytest.raises(UnknownNameError, match="unknown probe 'svm'"):
        check_probe_kind("svm")
