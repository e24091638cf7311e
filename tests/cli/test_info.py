"""mmib.cli.info: ``mmib info validate``'s flags become the StudyConfig of the estimator study (the study itself is
replaced by a recorder here; the full run: tests/info/test_cli.py)."""

import argparse
from types import SimpleNamespace

import pytest

import mmib.info.validate as validate
import mmib.info.validate_report as validate_report
from mmib.cli import main
from mmib.cli.info import _csv


def test_csv_parses_typed_lists_and_names_the_type():
    assert _csv(int)("20,50, 100") == (20, 50, 100)
    assert _csv(float)("2,6.5") == (2.0, 6.5)
    assert _csv(str)("infonce,,club,") == ("infonce", "club")
    assert _csv(str)("") == ()
    with pytest.raises(argparse.ArgumentTypeError, match=r"expected a comma-separated list of int, got '2,x'"):
        _csv(int)("2,x")


@pytest.fixture()
def recorded(monkeypatch, tmp_path):
    seen = {}

    def fake_study(cfg, reporter=None):
        seen["cfg"] = cfg
        return SimpleNamespace(seconds=1.0)

    def fake_write(res, out, stem):
        seen["out"], seen["stem"] = out, stem
        return {k: tmp_path / f"{stem}.{k}" for k in ("md", "json", "png")}

    monkeypatch.setattr(validate, "run_gaussian_study", fake_study)
    monkeypatch.setattr(validate_report, "write_outputs", fake_write)
    monkeypatch.setattr(validate_report, "claims", lambda res: ["claim one"])
    return seen


def test_flags_become_the_study_config(recorded, tmp_path, capsys):
    out = str(tmp_path / "o")
    assert main(["info", "validate", "--out", out, "--stem", "est", "--dims", "3,4", "--mis", "1,2.5", "--steps",
                 "6", "--first-steps", "9", "--estimators", "infonce,club", "--critic", "concat", "--hidden-dim", "8",
                 "--lr", "0.01", "--club-q", "linear", "--train-batch", "32", "--ema", "0", "--no-standardize", "--eval-batches",
                 "4", "--nongaussian", "", "--cond-steps", "5", "--seed", "3", "--input-map", "monotone",
                 "--no-progress"]) == 0
    cfg = recorded["cfg"]
    assert isinstance(cfg, validate.StudyConfig)
    assert (cfg.dims, cfg.mis, cfg.steps_per_level, cfg.estimators) == ((3, 4), (1.0, 2.5), 6, ("infonce", "club"))
    assert (cfg.critic, cfg.hidden_dim, cfg.lr, cfg.club_q, cfg.train_batch_size, cfg.ema) == \
        ("concat", 8, 0.01, "linear", 32, 0.0)
    assert cfg.standardize is False and cfg.eval_batches == 4 and cfg.nongaussian_estimators == ()
    assert cfg.cond_steps == 5 and cfg.seed == 3 and cfg.input_map == "monotone"
    assert cfg.first_level_steps == 9 and cfg.level_steps() == (9, 6)
    assert recorded["out"] == out and recorded["stem"] == "est"
    text = capsys.readouterr().out
    assert text.splitlines()[0] == "claim one" and f"table: {tmp_path / 'est.md'}" in text


def test_unset_flags_keep_the_study_defaults_and_quick_its_small_preset(recorded, tmp_path):
    assert main(["info", "validate", "--out", str(tmp_path), "--no-progress"]) == 0
    assert recorded["cfg"] == validate.StudyConfig()
    assert main(["info", "validate", "--quick", "--steps", "7", "--out", str(tmp_path), "--no-progress"]) == 0
    assert recorded["cfg"] == validate.StudyConfig.quick(steps_per_level=7)
    assert recorded["cfg"].dims == (20, 50)
    assert main(["info", "validate", "--input-map", "none", "--out", str(tmp_path), "--no-progress"]) == 0
    assert recorded["cfg"].input_map is None


def test_bad_values_are_one_line_exit_2(recorded, capsys):
    with pytest.raises(SystemExit) as e:
        main(["info", "validate", "--critic", "deep"])
    assert e.value.code == 2 and "invalid choice: 'deep'" in capsys.readouterr().err
    assert main(["info", "validate", "--estimators", "infonce,nope", "--no-progress"]) == 2
    assert capsys.readouterr().err.startswith("mmib: error: unknown estimator 'nope'; valid: ")
    assert "cfg" not in recorded  # refused before the study
