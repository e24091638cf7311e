"""mmib.info.validate_report: the checks (claims) computed from a study's results, the command line that
reproduces a configuration, and the compact JSON."""

import json
import math

import pytest


def test_conditional_check_states_its_tolerance_and_verdict():
    from mmib.info.validate import StudyConfig, StudyResult
    from mmib.info.validate_report import claims

    cfg = StudyConfig(dims=(3,), mis=(1.0,), estimators=("infonce",), cond_rel_tolerance=0.1)
    rows = [{"true_cmi": 2.0, "dim": 5, "negatives": "same_condition", "infonce": est, "infonce_sem": 0.01,
             "nce_club": 3.0, "nce_club_sem": 0.02} for est in (1.85, 1.75)]
    rows.append({**rows[0], "negatives": "batch", "infonce": 4.1})
    lines = [c for c in claims(StudyResult(config=cfg, conditional=rows)) if c.startswith("conditional")]
    assert "within 10% of the truth: holds (relative error -7.5%)" in lines[0]
    assert "within 10% of the truth: DOES NOT HOLD (relative error -12.5%)" in lines[1]
    assert "no tolerance applies" in lines[2]
    with pytest.raises(ValueError, match="cond_rel_tolerance must be a fraction"):
        StudyConfig(cond_rel_tolerance=1.5)


def _level(true, mean, sem=0.1, mx=1.0, dead=0.0, sat=None):
    return {"true": true, "mean": mean, "sem": sem, "std": 1.0, "max": mx, "dead": dead, "units": 16,
            "saturation": sat}


def test_claims_on_a_hand_made_staircase():
    from mmib.info.validate import StudyConfig, StudyResult
    from mmib.info.validate_report import claims

    cfg = StudyConfig(dims=(3,), mis=(1.0, 2.0), estimators=("infonce", "club"), train_batch_size=16)
    summary = {"infonce": {"3": [_level(1.0, 0.9, mx=2.7), _level(2.0, 2.5, dead=0.2)]},  # 2.5 > 2 + 2 s.e.m.
               "club": {"3": [_level(1.0, 1.5, sat=0.9), _level(2.0, 1.7, sat=0.1)]}}  # 1.7 < 2 - 2 s.e.m.
    oracle = {"infonce": {"3": [{"mean": 1.0}, {"mean": 4.0}]}}  # the second above log 16: not counted
    res = StudyResult(config=cfg, summary=summary, oracle=oracle, log_batch=math.log(16),
                      log_train_batch=math.log(16))
    lines = claims(res)
    assert lines[0] == ("InfoNCE <= log N = 2.773 on every training batch (N = 16): holds (largest batch value "
                        "2.700).")
    assert lines[1] == ("[Gaussian] infonce (lower bound): mean estimate at or below truth + 2 s.e.m. in 1/2 cells; "
                        "not in: d=3/I=2 (2.50).")
    assert lines[2] == "[Gaussian] infonce reaches 70% of its oracle row in 1/1 cells where the oracle is below log N."
    assert lines[3] == ("[Gaussian] club (upper bound): mean estimate at or above truth - 2 s.e.m. in 1/2 cells; "
                        "not in: d=3/I=2 (1.70).")
    assert lines[4].startswith("[Gaussian] club: q's log-variance saturated (|tanh| > 0.99 on more than half of "
                               "the held-out outputs) in 1/2 cells; there q cannot match")
    assert lines[5].endswith("(largest fraction in any ReLU layer at any level: 20.0%): DOES NOT HOLD: nce d=3 (20%).")
    summary["infonce"]["3"][0]["max"] = math.log(16) + 0.01
    assert "DOES NOT HOLD (largest batch value 2.783)" in claims(res)[0]


def test_command_line_lists_the_options_that_differ_from_the_defaults():
    from mmib.info.validate import StudyConfig
    from mmib.info.validate_report import command_line

    assert command_line(StudyConfig()) == "mmib info validate --out docs/results"
    cfg = StudyConfig(dims=(3, 5), mis=(1.0, 2.5), lr=3e-4, estimators=("infonce", "club"), standardize=False)
    assert command_line(cfg, "out") == ("mmib info validate --dims 3,5 --mis 1,2.5 --estimators infonce,club "
                                        "--lr 0.0003 --no-standardize --out out")
    assert command_line(StudyConfig(first_level_steps=1500)) == \
        "mmib info validate --first-steps 1500 --out docs/results"


def test_the_page_states_the_steps_of_the_first_level_and_of_the_others():
    from mmib.info.validate import StudyConfig
    from mmib.info.validate_report import _steps_text

    text = _steps_text(StudyConfig())
    assert text.startswith("Adam steps per MI value: 1000 at the first level (the cold start") and \
        "`estimate_mi`'s default `steps`), 400 at each later one" in text
    assert "`estimate_mi`" not in _steps_text(StudyConfig(first_level_steps=700))
    assert _steps_text(StudyConfig(steps_per_level=2000)) == "2000 Adam steps per MI value"
    assert _steps_text(StudyConfig(mis=(1.0,), first_level_steps=500)) == "500 Adam steps per MI value"


def test_a_result_written_before_first_level_steps_loads_with_equal_levels(tmp_path):
    from dataclasses import asdict

    from mmib.info.validate import StudyConfig, StudyResult
    from mmib.info.validate_report import compact_json, load_result

    payload = asdict(StudyResult(config=StudyConfig(dims=(3,), mis=(1.0, 2.0), steps_per_level=250)))
    del payload["config"]["first_level_steps"]
    path = tmp_path / "old.json"
    path.write_text(compact_json(payload))
    assert load_result(path).config.level_steps() == (250, 250)


def test_compact_json_is_one_key_per_line_and_round_trips():
    from mmib.info.validate_report import compact_json

    payload = {"config": {"dims": [3, 5], "name": "a b"}, "traces": [1.5, -2.0, 3], "x": None}
    text = compact_json(payload)
    assert json.loads(text) == payload
    lines = text.splitlines()
    assert lines[0] == "{" and lines[-1] == "}" and len(lines) == 2 + len(payload)
    assert lines[2] == '"traces": [1.5,-2.0,3],'


def test_the_page_text_states_the_steps_and_each_estimators_critic():
    from mmib.info.validate import StudyConfig, StudyResult
    from mmib.info.validate_report import _steps_text, markdown_report

    cfg = StudyConfig(dims=(3,), mis=(1.0, 2.0), estimators=("infonce", "nwj"))
    summary = {"infonce": {"3": [_level(1.0, 0.9), _level(2.0, 1.8)]}, "nwj": {"3": [_level(1.0, 0.8), _level(2.0, 1.7)]}}
    res = StudyResult(config=cfg, summary=summary, log_batch=math.log(64), log_train_batch=math.log(512))
    page = markdown_report(res)
    assert _steps_text(cfg) in page and "1000 at the first level" in page
    assert "critic `separable`" in page and "(NWJ, MINE: `concat`, trained on batches of 64)" in page
    one = markdown_report(StudyResult(config=StudyConfig(dims=(3,), mis=(1.0, 2.0), estimators=("infonce", "nwj"),
                                                         critic="concat"), summary=summary))
    assert "critic `concat`" in one and "NWJ, MINE:" not in one


def _plotted_result():
    from mmib.info.validate import StudyConfig, StudyResult

    cfg = StudyConfig(dims=(3,), mis=(1.0, 2.0, 4.0), estimators=("infonce",), steps_per_level=3,
                      first_level_steps=5)
    summary = {"infonce": {"3": [_level(1.0, 0.9), _level(2.0, 1.8), _level(4.0, 2.5)]}}
    traces = {"infonce": {"3": [0.1 * i for i in range(11)]}}
    return StudyResult(config=cfg, summary=summary, traces=traces, log_batch=math.log(64),
                       log_train_batch=math.log(512))


def test_the_plot_draws_the_truth_staircase_with_each_levels_steps(tmp_path, monkeypatch):
    """The 'true MI' line of the traces panel: 5 steps at the first level, 3 at each later one, the same length as
    the training trace (a wrong staircase would misplace every level against the traces)."""
    import numpy as np

    from mmib.info import validate_report
    from mmib.info.validate_report import truth_staircase

    res = _plotted_result()
    expected = [1.0] * 5 + [2.0] * 3 + [4.0] * 3
    assert truth_staircase(res.config).tolist() == expected
    captured = {}
    monkeypatch.setattr(validate_report, "save_figure_png", lambda fig, path, dpi: captured.setdefault("fig", fig))
    validate_report.plot(res, tmp_path / "p.png", smooth=2)
    lines = {ln.get_label(): ln for ln in captured["fig"].axes[0].get_lines()}
    assert np.asarray(lines["true MI"].get_ydata()).tolist() == expected
    assert len(lines["infonce"].get_xdata()) == len(expected) - 1  # the smoothed trace (window 2)


def test_the_plot_refuses_a_trace_that_does_not_match_the_staircase(tmp_path):
    from mmib.info.validate_report import plot

    res = _plotted_result()
    res.traces["infonce"]["3"] = res.traces["infonce"]["3"][:9]  # levels of 3 steps each: an older config's trace
    with pytest.raises(ValueError, match=r"estimator 'infonce', d = 3: its training trace has 9 steps, the "
                                         r"staircase of the configuration 11 \(level steps \[5, 3, 3\]\)"):
        plot(res, tmp_path / "p.png")
    assert not (tmp_path / "p.png").exists()


def test_the_dead_unit_cell_gives_the_worst_layers_fraction_and_the_units_in_all():
    from mmib.info.validate_report import _tables

    res = _plotted_result()
    res.summary["infonce"]["3"][2]["dead"] = 0.0996
    table = "\n".join(_tables(res, res.summary, "Gaussian"))
    assert "| 10.0% (16 units in all) |" in table and "worst layer, max over levels" in table


def test_the_page_states_the_learning_rates_the_run_used():
    from mmib.info.validate import StudyConfig
    from mmib.info.validate_report import _lr_text

    assert _lr_text(StudyConfig()) == "Adam lr 0.001, CLUB's `mlp` q 0.0005"
    assert _lr_text(StudyConfig(estimators=("infonce", "nwj"), nongaussian_estimators=())) == "Adam lr 0.001"
    assert _lr_text(StudyConfig(lr=3e-4)) == "Adam lr 0.0003"
    assert _lr_text(StudyConfig(club_q="linear")) == "Adam lr 0.001"
    # the rates a run recorded win over this version's defaults (a page re-rendered after a default changed)
    assert _lr_text(StudyConfig(), {"nce": 1e-3, "club": 1e-3, "club_linear": 1e-3}) == "Adam lr 0.001"
