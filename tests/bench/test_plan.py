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
