"""Golden values (mmib.bench.golden): each small configuration, trained deterministically (one thread, float64 where
the code allows, fixed steps), reproduces its stored final metrics within a tolerance that floating-point differences
between machines do not reach; a changed default (the standardization, a loss weight) does not.

After an intended change of behaviour: ``.venv/bin/python -m mmib.bench.golden --regenerate [NAME ...]`` and say in
the commit which values changed and why."""

from pathlib import Path

import pytest

from mmib.bench.golden import CONFIGS, compare, golden_overrides, load_stored, run_golden

HERE = Path(__file__).parent


@pytest.mark.parametrize("name", list(CONFIGS))
def test_golden_values(name):
    stored = load_stored(name, HERE)
    assert stored["overrides"] == golden_overrides(name), (
        "the configuration changed: regenerate its golden values")
    diff = compare(run_golden(name), stored["metrics"], stored["rtol"], stored["atol"])
    assert not diff, (f"{name} no longer reproduces its golden values (python -m mmib.bench.golden --regenerate "
                      f"{name} if the change is intended):\n" + "\n".join(diff))


@pytest.mark.parametrize("name, change, moved", [
    ("clip-sim_align", ["data.standardize=false"], "val/loss"),  # the standardization (the abbd2de kind of change)
    # a loss weight 10 % lower: the sufficiency term (not a function of beta) moves through training
    ("ova_ib-sim_align", ["method.objective.beta=0.9"], "val/sufficiency"),
])
def test_a_changed_default_fails_the_comparison(name, change, moved):
    stored = load_stored(name, HERE)
    diff = compare(run_golden(name, change), stored["metrics"], stored["rtol"], stored["atol"])
    assert any(d.startswith(moved + ":") for d in diff), diff


def test_compare_tolerance():
    assert compare({"a": 1.0 + 1e-9}, {"a": 1.0}) == []
    assert compare({"a": 1.001}, {"a": 1.0})
    assert compare({"a": 1.0}, {"a": 1.0, "b": 2.0}) and compare({"a": 1.0, "c": 0.0}, {"a": 1.0})
