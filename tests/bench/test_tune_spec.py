"""mmib.bench.tune_spec: a suite's ``tune:`` block read into a TuneSpec (defaults, the search ranges normalized, the
direction from the metric), every mistake named, and what the studies share and wait for."""

import pytest

from mmib.bench.tune_spec import TuneSpec, parse_tune
from mmib.errors import MMIBError, UnknownNameError

VARIANTS, DATA, SEEDS = ["clip", "clip-abl", "comm"], ["mf2", "mf3"], [3, 4]


def _parse(**raw):
    return parse_tune({"n_trials": 4, "space": {"clip": {"method.objective.temperature": [0.05, 0.1]}}, **raw},
                      "s", VARIANTS, DATA, SEEDS)


def test_defaults_and_normalized_ranges():
    assert parse_tune(None, "s", VARIANTS, DATA, SEEDS) is None
    t = parse_tune({"n_trials": 4, "space": {
        "clip": {"method.objective.temperature": {"low": 0.01, "high": 0.5, "log": True},
                 "method.optim.lr": [1e-4, 1e-3]},
        "comm": {"method.embed_dim": {"low": 8, "high": 64, "step": 8, "int": True}}}}, "s", VARIANTS, DATA, SEEDS)
    assert isinstance(t, TuneSpec)
    assert (t.data, t.seed, t.n_trials) == ("mf2", 3, 4)  # the first data entry and the first seed
    assert t.sampler == {"name": "tpe", "seed": 0} and t.pruner == {"name": "none"}
    assert t.metric == {"logged": "val/loss"} and t.direction == "minimize" and t.trainer == {} and t.inherit == {}
    assert t.space == {
        "clip": {"method.objective.temperature": {"low": 0.01, "high": 0.5, "log": True, "int": False},
                 "method.optim.lr": {"choices": [1e-4, 1e-3]}},  # a list is a set of choices
        "comm": {"method.embed_dim": {"low": 8, "high": 64, "log": False, "int": True, "step": 8}}}


def test_the_direction_follows_the_metric_unless_given():
    assert _parse(metric={"logged": "val/loss"}).direction == "minimize"
    probe = _parse(metric={"probe": "linear"})
    assert probe.direction == "maximize" and probe.metric == {"probe": "linear", "representation": "concat",
                                                              "metric": "accuracy"}
    assert _parse(metric={"logged": "val/R@1"}).direction == "maximize"
    oom = _parse(metric={"oom": "accuracy"})
    assert oom.direction == "maximize" and oom.metric == {"oom": "accuracy"}
    assert _parse(metric={"oom": "R@1/oom->im"}).direction == "maximize"
    assert _parse(metric={"logged": "val/accuracy"}, direction="minimize").direction == "minimize"
    t = _parse(data="mf3", seed=4, sampler={"name": "random"}, pruner={"name": "median", "n_warmup_steps": 2},
               trainer={"max_epochs": 3})
    assert (t.data, t.seed, t.sampler, t.pruner, t.trainer) == (
        "mf3", 4, {"name": "random", "seed": 0}, {"name": "median", "n_warmup_steps": 2}, {"max_epochs": 3})


@pytest.mark.parametrize("raw, error, match", [
    ({"n_trials": 0}, MMIBError, r"suite 's' tune.n_trials: expected an integer >= 1"),
    ({"n_trials": True}, MMIBError, r"tune.n_trials: expected an integer >= 1"),
    ({"seed": 1.5}, MMIBError, r"tune.seed: expected an integer, got 1.5"),
    ({"data": "mf9"}, UnknownNameError, r"unknown data entry of suite 's' tune 'mf9'; .*valid: mf2, mf3"),
    ({"trails": 3}, UnknownNameError, r"unknown key of suite 's' tune 'trails'"),
    ({"sampler": {"name": "grid"}}, UnknownNameError, r"unknown sampler of suite 's' tune 'grid'"),
    ({"pruner": {"name": "early"}}, UnknownNameError, r"unknown pruner of suite 's' tune 'early'"),
    ({"metric": {"metric": "accuracy"}}, MMIBError, r"tune.metric: give either \{logged: val/<name>\}"),
    ({"metric": {"logged": "val/loss", "probe": "linear"}}, MMIBError, r"tune.metric: give either"),
    ({"metric": {"oom": "accuracy", "probe": "linear"}}, MMIBError, r"tune.metric: give either"),
    ({"metric": {"oom": "accuracy", "split": "test"}}, MMIBError, r"an oom metric takes no other key"),
    ({"metric": {"oom": 1}}, MMIBError, r"tune.metric.oom: expected the name of an oom protocol metric"),
    ({"metric": {"logged": "val/loss", "mode": "min"}}, MMIBError, r"a logged metric takes no other key"),
    ({"metric": {"logged": "test/accuracy"}}, MMIBError, r"selection is on the validation split only"),
    ({"metric": {"probe": "linear", "split": "test"}}, UnknownNameError, r"unknown key of suite 's' tune.metric "
                                                                         r"'split'"),
    ({"direction": "up"}, MMIBError, r"tune.direction: minimize or maximize, got 'up'"),
    ({"space": {}}, MMIBError, r"tune.space: expected a mapping of method variant"),
    ({"space": {"clpi": {"a": [1]}}}, UnknownNameError, r"unknown method variant in suite 's' tune.space 'clpi'; "
                                                        r"did you mean 'clip'"),
    ({"space": {"clip": {}}}, MMIBError, r"tune.space.clip: expected a mapping of dotted config keys"),
    ({"space": {"clip": {"k": 0.1}}}, MMIBError, r"tune.space.clip.k: expected \{low, high"),
    ({"space": {"clip": {"k": {"low": 1, "hi": 2}}}}, UnknownNameError, r"unknown key of suite 's' "
                                                                        r"tune.space.clip.k 'hi'"),
    ({"space": {"clip": {"k": {"choices": []}}}}, MMIBError, r"'choices' is a non-empty list and stands alone"),
    ({"space": {"clip": {"k": {"choices": [1], "low": 0}}}}, MMIBError, r"stands alone"),
    ({"space": {"clip": {"k": {"low": 1}}}}, MMIBError, r"a range needs 'low' and 'high'"),
    ({"space": {"clip": {"k": {"low": 2, "high": 1}}}}, MMIBError, r"expected numbers low < high, got low=2, high=1"),
    ({"space": {"clip": {"k": {"low": 0, "high": 1, "log": True}}}}, MMIBError, r"a log range needs low > 0"),
    ({"space": {"clip": {"k": {"low": 1, "high": 9, "log": True, "step": 2}}}}, MMIBError, r"exclude each other"),
    ({"trainer": [1]}, MMIBError, r"tune.trainer: expected a mapping of trainer keys"),
    ({"inherit": ["clip-abl"]}, MMIBError, r"tune.inherit: expected a mapping"),
    ({"inherit": {"clip": "clip"}}, MMIBError, r"tune.inherit.clip: the variant is tuned itself"),
    ({"inherit": {"clip-abl": "comm"}}, UnknownNameError, r"unknown tuned variant in suite 's' "
                                                          r"tune.inherit.clip-abl 'comm'; .*valid: clip$"),
])
def test_mistakes_are_named(raw, error, match):
    with pytest.raises(error, match=match):
        _parse(**raw)
    with pytest.raises(MMIBError, match="tune: expected a mapping"):
        parse_tune([1], "s", VARIANTS, DATA, SEEDS)


def test_shared_budget_and_pending_studies():
    t = _parse(inherit={"clip-abl": "clip"})
    shared = t.shared()
    assert "space" not in shared and "inherit" not in shared and shared["n_trials"] == 4
    assert shared == {k: v for k, v in t.to_dict().items() if k not in ("space", "inherit")}
    assert _parse().shared() == shared  # who inherits does not change the budget
    assert t.pending({}) == {"clip", "clip-abl"}
    assert t.pending({"clip": {"method.objective.temperature": 0.05}}) == set()
    assert _parse().pending({}) == {"clip"}
