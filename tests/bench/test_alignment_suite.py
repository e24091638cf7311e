"""The alignment comparison's suites (issue 19): one protocol for every method (the primary suite tunes each headline
method's temperature and learning rate with the same budget, the ablations inherit OVA-IB's values; the secondary
suite fixes tau = 0.01 for all), the Symile checks, the tune block's ``inherit`` key (the summarizing protocols
``retrieval_mean`` / ``subset_sizes``: tests/bench/test_studies.py). Fast: configs are composed, nothing is trained."""

import copy

import pytest

from mmib.bench.plan import plan_suite
from mmib.bench.suite import load_suite, parse_suite
from mmib.bench.tune import apply_tuning
from mmib.config import compose_config, to_container
from mmib.errors import MMIBError, UnknownNameError

HEADLINE = ["clip", "clip_ib", "symile", "gram", "triangle", "ova_ib"]


def _cfg(run):
    return to_container(compose_config(run.overrides))


def _small(suite, data, seeds=(0,)):
    """The suite restricted to some data entries and seeds (composing every run's config is slow)."""
    s = copy.deepcopy(suite)
    s.data = [d for d in s.data if d.name in data]
    s.seeds = list(seeds)
    return s


def test_primary_suite_tunes_every_headline_method_with_one_budget():
    s = load_suite("alignment")
    t = s.tune
    assert sorted(t.space) == sorted(HEADLINE)
    assert 1 <= t.n_trials <= 10 and t.data in [d.name for d in s.data] and t.seed == s.seeds[0]
    spaces = {v: t.space[v] for v in HEADLINE}
    assert all(sp == spaces["clip"] for sp in spaces.values()), "every method searches the same space"
    assert set(spaces["clip"]) == {"method.objective.temperature", "method.optim.lr"}
    assert "probe" in t.metric and t.direction == "maximize"  # selected on the val split's probe
    assert t.inherit == {"ova_ib-beta0": "ova_ib", "ova_ib-mlp": "ova_ib"}
    assert len(s.seeds) == 3


def test_ablations_run_at_their_parents_chosen_values(tmp_path):
    s = _small(load_suite("alignment"), ["sim3"])
    chosen = {v: {"method.objective.temperature": 0.02 + 0.01 * i, "method.optim.lr": 5e-4}
              for i, v in enumerate(HEADLINE)}
    # a study still missing: the parent's inheritors wait with it
    partial = {v: {"chosen": c} for v, c in chosen.items() if v != "ova_ib"}
    plan = plan_suite(s, tmp_path, progress=False, tuned=partial)
    waiting = {r.variant.name for r in plan if r.status == "tune"}
    assert waiting == {"ova_ib", "ova_ib-beta0", "ova_ib-mlp"}
    plan = plan_suite(s, tmp_path, progress=False, tuned={v: {"chosen": c} for v, c in chosen.items()})
    assert not [r for r in plan if r.status == "tune"]
    seen = set()
    for r in plan:
        c = _cfg(r)["method"]
        parent = {"ova_ib-beta0": "ova_ib", "ova_ib-mlp": "ova_ib"}.get(r.variant.name, r.variant.name)
        assert c["objective"]["temperature"] == pytest.approx(chosen[parent]["method.objective.temperature"])
        assert c["optim"]["lr"] == pytest.approx(5e-4)
        seen.add(r.variant.name)
        if r.variant.name == "ova_ib-beta0":
            assert c["objective"]["beta"] == 0.0
        if r.variant.name == "ova_ib-mlp":
            assert c["objective"]["projector"] == "mlp"
    assert seen == {*HEADLINE, "ova_ib-beta0", "ova_ib-mlp"}


def test_secondary_suite_fixes_one_temperature_for_every_method(tmp_path):
    s = load_suite("alignment-tau")
    primary = load_suite("alignment")
    assert [d.name for d in s.data] == [d.name for d in primary.data] and s.seeds == primary.seeds
    plan = plan_suite(_small(s, ["mfeat-3v"]), tmp_path, progress=False)
    assert {r.variant.method for r in plan} == set(HEADLINE)
    for r in plan:
        m = _cfg(r)["method"]
        assert m["objective"]["temperature"] == 0.01 and m["objective"]["learn_temperature"] is False, r.label
        assert m["optim"]["lr"] == 1e-3


def test_symile_checks_cover_the_done_criteria(tmp_path):
    s = load_suite("symile-checks")
    assert s.seeds == [0, 1, 2]
    plan = plan_suite(_small(s, [d.name for d in s.data]), tmp_path, progress=False)
    runs = {(r.variant.name, r.data.name, r.seed): _cfg(r) for r in plan}
    for seed in (0,):
        c = runs[("symile", "mfeat-3v", seed)]
        assert list(c["data"]["views"]) == [0, 1, 2] and c["trainer"]["max_epochs"] == 10
        assert c["method"]["objective"]["negatives"] == "n" and c["method"]["objective"]["temperature"] == 0.07
        assert runs[("symile-n_squared", "mfeat-3v", seed)]["method"]["objective"]["negatives"] == "n_squared"
        assert ("clip", "mfeat-3v", seed) in runs and ("symile", "mfeat", seed) in runs
    grid = {(c["method"]["embed_dim"], c["data"]["n_modalities"]) for (v, d, _), c in runs.items()
            if d.startswith("sim") and v.startswith("symile")}
    assert grid == {(d, m) for d in (64, 256, 512) for m in (3, 4, 6)}


def _mini(**tune):
    return {"name": "mini", "seeds": [0], "methods": ["clip", {"name": "clip-abl", "method": "clip"}, "ova_ib"],
            "data": [{"name": "s3", "data": "sim_align"}],
            "tune": {"n_trials": 2, "metric": {"logged": "val/loss"},
                     "space": {"clip": {"method.objective.temperature": {"low": 0.01, "high": 0.1}}}, **tune}}


@pytest.mark.parametrize("inherit,error,match", [
    ({"clip-abl": "ova_ib"}, UnknownNameError, "ova_ib"),       # the parent is not tuned
    ({"nope": "clip"}, UnknownNameError, "nope"),                # not a variant of the suite
    ({"clip": "clip"}, MMIBError, "tuned itself"),               # a tuned variant cannot inherit
    (["clip-abl"], MMIBError, "mapping"),
])
def test_inherit_is_validated(inherit, error, match):
    with pytest.raises(error, match=match):
        parse_suite(_mini(inherit=inherit))


def test_inherit_copies_the_parents_values_and_leaves_the_budget_alone():
    s = parse_suite(_mini(inherit={"clip-abl": "clip"}))
    plain = parse_suite(_mini())
    assert s.tune.shared() == plain.tune.shared()  # the studies' fingerprints do not depend on who inherits
    t = apply_tuning(s, {"clip": {"method.objective.temperature": 0.05}})
    cfg = {v.name: v.config for v in t.methods}
    assert cfg["clip-abl"] == cfg["clip"] == {"method.objective.temperature": 0.05} and cfg["ova_ib"] == {}
    assert s.tune.pending({}) == {"clip", "clip-abl"} and s.tune.pending({"clip": {}}) == set()
