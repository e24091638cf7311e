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
