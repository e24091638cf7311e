"""The protocol registry: one record per protocol (options, run, tables, compared metrics, figures), the
mapping form study analyses register into, and the report reading tables / comparisons from the records
without torch."""

import json
import subprocess
import sys

import pytest

from mmib.errors import MMIBError, UnknownNameError
from mmib.eval.evaluate import evaluate
from mmib.eval.protocols import (
    BUILTIN_PROTOCOLS,
    COMPARE_ALL,
    PROTOCOLS,
    Protocol,
    ProtocolRegistry,
    parse_protocols,
)
from mmib.eval.report import protocol_tables, render_comparison, render_markdown
from mmib.eval.tables import TableData

from ..conftest import IdentityMethod

FAST = {"max_epochs": 20, "patience": 5}


def test_every_builtin_protocol_is_one_record_with_its_parts():
    assert BUILTIN_PROTOCOLS == ("probe", "pair_probe", "subsets", "retrieval", "info_probe", "plots", "oom")
    for name in BUILTIN_PROTOCOLS:
        unit = PROTOCOLS.unit(name)
        assert unit.name == name and PROTOCOLS[name] is unit.run and callable(unit.tables)
        # the run, the options and the table builder are defined in the protocol's own module
        module = f"mmib.eval.protocols.{name}"
        assert unit.run.__module__ == module and unit.options.__module__ == module
        assert unit.tables.__module__ == module
    assert {n: PROTOCOLS.unit(n).compare for n in BUILTIN_PROTOCOLS} == {
        "probe": COMPARE_ALL, "pair_probe": COMPARE_ALL, "subsets": "primary", "retrieval": ("mAP", "R@1"),
        "info_probe": ("score",), "plots": None, "oom": None}


def test_a_plain_function_registers_as_a_generic_uncompared_protocol():
    reg = ProtocolRegistry((PROTOCOLS.unit("probe"),))

    def analysis(ctx, options=None):
        return {"protocol": "analysis", "rows": []}

    reg["analysis"] = analysis
    assert reg["analysis"] is analysis and list(reg) == ["probe", "analysis"] and len(reg) == 2
    unit = reg.unit("analysis")
    assert unit.compare is None and unit.plots == () and unit.options is None
    rows = [{"id": "x", "label": "row x", "metrics": {"m": 0.5}}]
    assert unit.tables({"protocol": "analysis", "name": "a", "rows": rows})[0].rows == [["row x", "0.5000"]]
    with pytest.raises(MMIBError, match="registered already"):
        reg.add(Protocol("analysis", lambda ctx, o=None: {}))
    with pytest.raises(MMIBError, match="expected a function"):
        reg["bad"] = 3
    del reg["analysis"]
    assert reg.unit("analysis") is None and "analysis" not in reg


def test_report_uses_the_records_tables_and_compare(latent_dm, tmp_path, monkeypatch):
    """A registered record's own table builder and compared metric reach report.md and the comparison; a result of
    an unregistered protocol gets the generic table."""
    calls = []

    def run_twice(ctx, options=None):
        return {"protocol": "twice", "options": {}, "notes": [], "plots": {}, "primary_metric": "v",
                "rows": [{"id": "method/x", "source": "method", "label": "x", "metrics": {"v": 2.0, "w": 1.0},
                          "chance": {}}]}

    def tables(res):
        calls.append(res["name"])
        return [TableData(f"{res['name']}: own table", ["id", "v"], [[r["id"], str(r["metrics"]["v"])]
                                                                    for r in res["rows"]], [])]

    monkeypatch.setitem(PROTOCOLS._units, "twice", Protocol("twice", run_twice, tables=tables, compare=("w",)))
    r = evaluate(IdentityMethod(latent_dm.spec), latent_dm, ["twice"], out_dir=tmp_path,
                 progress=False)
    md = render_markdown(r)
    assert "**twice: own table**" in md and "| method/x | 2.0 |" in md and calls
    cmp = render_comparison([r, r], ["a", "b"])
    assert "## twice: w" in cmp and "## twice: v" not in cmp
    monkeypatch.delitem(PROTOCOLS._units, "twice")
    generic = protocol_tables(r["protocols"]["twice"])
    assert generic[0].headers == ["row", "v", "w"]
    assert "## twice" not in render_comparison([r, r], ["a", "b"])  # not registered: not compared


def test_the_figures_a_protocol_writes_are_the_ones_it_declares(latent_dm, tmp_path):
    protocols = [{"subsets": {"sizes": [1], "probe_options": FAST}}, {"retrieval": {"directions": ["a->b"]}},
                 {"info_probe": {"latents": ["za"], "include_raw": False, "probe_options": FAST}},
                 {"plots": {"max_points": 100, "tsne_iterations": 250, "umap": False}}]
    r = evaluate(IdentityMethod(latent_dm.spec), latent_dm, protocols, out_dir=tmp_path, progress=False)
    for name, res in r["protocols"].items():
        assert res["plots"], name
        assert set(res["plots"]) <= set(PROTOCOLS.unit(name).plots), name


def test_the_report_reads_the_registry_without_torch():
    code = ("import sys, json; import mmib.eval.report, mmib.eval.protocols as p; "
            "print(json.dumps([sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'lightning')), "
            "len(p.PROTOCOLS)]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    heavy, n = json.loads(out.splitlines()[-1])
    assert heavy == [] and n >= len(BUILTIN_PROTOCOLS)


def test_parse_protocols_forms_and_errors():
    ps = parse_protocols(["probe", {"subsets": {"probe": "mlp"}}, {"protocol": "probe", "name": "p2", "probes": ["mlp"]}])
    assert [(p.kind, p.name) for p in ps] == [("probe", "probe"), ("subsets", "subsets"), ("probe", "p2")]
    assert ps[2].options == {"probes": ["mlp"]}
    with pytest.raises(UnknownNameError, match="unknown protocol 'probes'"):
        parse_protocols(["probes"])
    with pytest.raises(MMIBError, match="used twice"):
        parse_protocols(["probe", "probe"])
