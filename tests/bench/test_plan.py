"""mmib.bench.plan: which runs a suite has (variants × data × seeds, only_data), and their status."""

import pytest

from mmib.bench.plan import plan_suite
from mmib.bench.suite import parse_suite
from mmib.errors import UnknownNameError


def test_only_data_restricts_a_variant(tiny_suite):
    raw = {**tiny_suite, "methods": [tiny_suite["methods"][0], {**tiny_suite["methods"][1], "only_data": ["mf3"]}],
           "data": [*tiny_suite["data"], {"name": "mf3", "data": "mfeat", "options": {"views": [0, 1, 2]}}]}
    plan = plan_suite(parse_suite(raw), "/tmp/unused-mmib-bench")
    names = sorted(p.folder.name for p in plan)
    assert names == ["clip-a-mf2-s0", "clip-a-mf2-s1", "clip-a-mf3-s0", "clip-a-mf3-s1", "clip-b-mf3-s0",
                     "clip-b-mf3-s1"]
    with pytest.raises(UnknownNameError, match="data entry in only_data .* 'nope'; valid: mf2, mf3"):
        parse_suite({**raw, "methods": [{"name": "clip", "only_data": ["nope"]}]})


def test_a_protocol_with_only_data_runs_and_is_fingerprinted_on_those_entries_only(tiny_suite):
    mf3 = {"name": "mf3", "data": "mfeat", "options": {"views": [0, 1, 2]}}
    base = {**tiny_suite, "data": [*tiny_suite["data"], mf3], "protocols": ["probe"]}
    scoped = {**base, "protocols": ["probe", {"protocol": "retrieval", "only_data": ["mf3"]}]}
    short = {**base, "protocols": ["probe", {"retrieval": {"directions": "last", "only_data": "mf3"}}]}
    suite = parse_suite(scoped)
    assert suite.protocols_for("mf2") == ["probe"]
    assert suite.protocols_for("mf3") == ["probe", {"protocol": "retrieval"}]
    assert parse_suite(short).protocols_for("mf3") == ["probe", {"retrieval": {"directions": "last"}}]
    fp = {p.folder.name: p.fingerprint for p in plan_suite(parse_suite(base), "/tmp/unused-mmib-bench")}
    fp_scoped = {p.folder.name: p.fingerprint for p in plan_suite(suite, "/tmp/unused-mmib-bench")}
    for name, f in fp.items():  # the entries the scoped protocol does not run on keep their fingerprints
        assert (fp_scoped[name] == f) == ("-mf2-" in name), name
    with pytest.raises(UnknownNameError, match="only_data of suite .* protocols\\[1\\].*'nope'"):
        parse_suite({**base, "protocols": ["probe", {"protocol": "retrieval", "only_data": ["nope"]}]})
