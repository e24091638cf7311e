"""mmib.bench.report: the leaderboard table and the suite report."""


def test_the_leaderboard_chance_row_is_per_data_set():
    # a binary and a ten-class data set: each column gets its own chance level (not the first one's)
    from mmib.bench.report import leaderboard_table

    results = {
        "suite": {"data": [{"name": "bin"}, {"name": "ten"}, {"name": "none"}], "methods": [{"name": "a"}]},
        "leaderboard": {"metric": "accuracy", "entries": [
            {"variant": "a", "data": "bin", "mean": 0.8, "std": float("nan"), "n": 1, "chance": 0.5, "rank": 1},
            {"variant": "a", "data": "ten", "mean": 0.9, "std": float("nan"), "n": 1, "chance": 0.1, "rank": 1},
        ]},
    }
    header, rows = leaderboard_table(results)
    assert header == ["variant", "bin", "ten", "none"]
    assert rows[-1] == ["chance", "0.5000", "0.1000", "—"]


def test_the_tuning_section_names_each_kind_of_selection_metric():
    from mmib.bench.report import tuning_section

    spec = {"n_trials": 8, "sampler": {"name": "qmc", "seed": 0}, "pruner": {"name": "none"}, "data": "sim-semi",
            "seed": 0, "direction": "maximize"}
    for metric, text in (({"oom": "accuracy"}, "selection: oom protocol `accuracy` on the val split (maximize)"),
                         ({"logged": "val/loss"}, "selection: logged `val/loss` (maximize)"),
                         ({"probe": "linear", "metric": "accuracy"},
                          "selection: linear probe on `concat`, accuracy on the val split (maximize)")):
        lines = tuning_section({"suite": {"tune": {**spec, "metric": metric}}, "tune": {}})
        assert lines[0] == "## Tuning" and text in lines[2], lines[2]
