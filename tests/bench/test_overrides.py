"""mmib.bench.overrides: a run's configuration fingerprint."""


def test_fingerprint_ignores_cache_switches_and_the_default_gather_switch():
    # runs finished before a no-op switch existed must stay done: cache locations and gather_distributed: false
    # (what every objective did before the switch) do not enter the fingerprint; a real change does
    from mmib.bench.overrides import config_fingerprint

    base = {"method": {"name": "comm", "objective": {"temperature": 0.1}}, "trainer": {"max_epochs": 2}, "seed": 0}
    fp = config_fingerprint(base, ["probe"])
    same = {**base, "method": {"name": "comm", "objective": {"temperature": 0.1, "gather_distributed": False},
                               "mine": {"cache": True, "cache_dir": "/x"}}}
    assert config_fingerprint(same, ["probe"]) == fp  # (a block left empty counts as absent)
    only_switch = {"method": {"name": "cross", "objective": {"gather_distributed": False}}, "seed": 0}
    assert config_fingerprint(only_switch, []) == config_fingerprint({"method": {"name": "cross"}, "seed": 0}, [])
    gathered = {**base, "method": {"name": "comm", "objective": {"temperature": 0.1, "gather_distributed": True}}}
    assert config_fingerprint(gathered, ["probe"]) != fp
    assert config_fingerprint({**base, "trainer": {"max_epochs": 3}}, ["probe"]) != fp


def test_fingerprint_leaves_out_an_option_added_at_its_former_behaviour():
    # rus gained synergy_partners / synergy_bank / synergy_source (issue 20); at the values that reproduce the code of
    # before they do not enter the fingerprint (finished rus runs stay done); any other value, or another method
    # with a key of the same name, does
    from mmib.bench.overrides import NEUTRAL_OPTIONS, config_fingerprint

    before = {"method": {"name": "rus", "synergy": "unimodal_hsic", "weights": {"S": 1.0}}, "seed": 0}
    added = {"method": {**before["method"], **{k: v for name, k, v in NEUTRAL_OPTIONS if name == "rus"}}, "seed": 0}
    assert set(added["method"]) >= {"synergy_partners", "synergy_bank", "synergy_source"}
    fp = config_fingerprint(before, ["probe"])
    assert config_fingerprint(added, ["probe"]) == fp
    for key, other in (("synergy_partners", 8), ("synergy_bank", 32), ("synergy_source", "unique"),
                       ("synergy_partners", 4.0)):
        changed = {"method": {**added["method"], key: other}, "seed": 0}
        assert config_fingerprint(changed, ["probe"]) != fp, key
    foreign = {"method": {"name": "comm", "synergy_source": "fusion"}, "seed": 0}
    assert config_fingerprint(foreign, []) != config_fingerprint({"method": {"name": "comm"}, "seed": 0}, [])



def test_fingerprint_leaves_out_the_data_options_at_their_former_behaviour():
    # data.train_label_noise (issue 19) at 0 flips nothing, the one behaviour of before: every data set's finished runs
    # stay done; any other rate enters the fingerprint
    from mmib.bench.overrides import config_fingerprint

    before = {"data": {"name": "omib_sim", "case": "I"}, "method": {"name": "ibma"}, "seed": 0}
    fp = config_fingerprint(before, ["probe"])
    for zero in (0.0, 0):
        assert config_fingerprint({**before, "data": {**before["data"], "train_label_noise": zero}}, ["probe"]) == fp
    for other in (0.4, False, "0.0"):
        assert config_fingerprint({**before, "data": {**before["data"], "train_label_noise": other}}, ["probe"]) != fp


def test_fingerprint_head_centre_none_is_the_behaviour_of_before():
    # alignment methods gained head_centre (issue 19); Symile's default became batch_offset, so Symile's finished runs
    # (no key) are runs of 'none': a variant with head_centre none keeps them, the new default does not
    from mmib.bench.overrides import config_fingerprint

    for name in ("clip", "clip_ib", "symile", "gram", "triangle", "ova_ib"):
        before = {"method": {"name": name, "objective": {"temperature": 0.07}}, "seed": 0}
        fp = config_fingerprint(before, ["retrieval"])
        none = {"method": {**before["method"], "head_centre": "none"}, "seed": 0}
        assert config_fingerprint(none, ["retrieval"]) == fp, name
        for other in ("batch", "batch_offset"):
            assert config_fingerprint({"method": {**before["method"], "head_centre": other}, "seed": 0},
                                      ["retrieval"]) != fp, name
