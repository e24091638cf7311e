"""mmib.bench.suite: suite files are validated with errors that name the key; the packaged suites parse."""

import math

import pytest

from mmib.bench.suite import parse_suite
from mmib.errors import MMIBError


@pytest.mark.parametrize("patch, match", [
    ({"methods": []}, "'methods' is empty"),
    ({"methods": ["nope"]}, "unknown method 'nope'"),
    ({"data": [{"name": "x", "data": "nodata"}]}, "unknown data config .* 'nodata'"),
    ({"seeds": []}, "seeds must be a non-empty list"),
    ({"colour": 1}, "colour"),
    ({"methods": [{"name": "clip", "only_data": 3}]}, "only_data: expected a non-empty list"),
    ({"protocols": [{"nope": {}}]}, "nope"),
])
def test_bad_suites_name_the_key(tiny_suite, patch, match):
    with pytest.raises(MMIBError, match=match):
        parse_suite({**tiny_suite, **patch})


def test_packaged_suites_parse():
    from mmib.bench.suite import load_suite, packaged_suites

    names = packaged_suites()
    assert "demo" in names
    for n in names:
        s = load_suite(n)
        assert s.methods and s.data and s.seeds and not math.isnan(len(s.seeds))
