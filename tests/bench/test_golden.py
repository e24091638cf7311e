"""mmib.bench.golden: the overrides of each golden configuration, the tolerance comparison (closed form), and the
compare / regenerate command with the training replaced by fixed metrics (the golden runs themselves:
tests/golden/test_golden.py)."""

import json

import pytest

import mmib.bench.golden as golden
from mmib.errors import MMIBError, UnknownNameError


def test_overrides_add_float64_and_the_common_settings_unless_the_config_sets_a_precision():
    ov = golden.golden_overrides("clip-sim_align", ["seed=3"])
    assert ov == [*golden.CONFIGS["clip-sim_align"], "trainer.precision=64-true", *golden.COMMON, "seed=3"]
    cox = golden.golden_overrides("cox-sim")
    assert "trainer.precision=64-true" not in cox and "trainer.precision=32-true" in cox
    assert all(name in golden.CONFIGS for name in golden.TOLERANCE)
    with pytest.raises(UnknownNameError, match="unknown golden configuration 'clip'; valid: clip-sim_align, comm-rus, "):
        golden.golden_overrides("clip")


def test_compare_uses_atol_plus_rtol_times_the_stored_value():
    stored = {"loss": 2.0, "acc": 0.0, "nan": float("nan")}
    rtol, atol = 1e-3, 1e-6
    # at the boundary |now - stored| = atol + rtol * |stored| a value still matches; just beyond it does not
    edge = {"loss": 2.0 + (atol + rtol * 2.0) * 0.999, "acc": atol * 0.999, "nan": float("nan")}
    assert golden.compare(edge, stored, rtol, atol) == []
    beyond = {"loss": 2.0 + (atol + rtol * 2.0) * 1.01, "acc": -atol * 1.01, "nan": float("nan")}
    diff = golden.compare(beyond, stored, rtol, atol)
    assert [d.split(":")[0] for d in diff] == ["acc", "loss"]
    assert diff[1].startswith(f"loss: {beyond['loss']!r} now, stored 2.0 (rel. diff 1.01e-03)")
    assert golden.compare({"loss": float("nan"), "acc": 0.0, "nan": 1.0}, stored, rtol, atol) == [
        "loss: nan now, stored 2.0 (rel. diff nan)", "nan: 1.0 now, stored nan (rel. diff nan)"]
    assert golden.compare({"loss": 2.0, "new": 1.0}, {"loss": 2.0, "old": 3.0}) == [
        "new: new metric 1.0 (not in the stored values)", "old: stored 3.0, not logged any more"]


def test_main_compares_and_regenerates_without_training(tmp_path, monkeypatch, capsys):
    metrics = {"clip-sim_align": {"train/loss": 1.5, "val/loss": 1.25}, "comm-rus": {"train/loss": 0.5}}
    monkeypatch.setattr(golden, "run_golden", lambda name, extra=(), run_dir=None: dict(metrics[name]))
    with pytest.raises(MMIBError, match=r"no stored golden values '.*clip-sim_align.json': python -m "
                                        r"mmib.bench.golden --regenerate clip-sim_align"):
        golden.main(["clip-sim_align", "--dir", str(tmp_path)])
    assert golden.main(["clip-sim_align", "comm-rus", "--regenerate", "--dir", str(tmp_path)]) == 0
    rec = json.loads((tmp_path / "clip-sim_align.json").read_text())
    assert rec["metrics"] == metrics["clip-sim_align"] and rec["overrides"] == golden.golden_overrides("clip-sim_align")
    assert (rec["rtol"], rec["atol"]) == (golden.RTOL, golden.ATOL) and rec["name"] == "clip-sim_align"
    assert golden.load_stored("comm-rus", tmp_path)["metrics"] == {"train/loss": 0.5}
    capsys.readouterr()
    assert golden.main(["clip-sim_align", "comm-rus", "--dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.split() == ["clip-sim_align:", "ok", "comm-rus:", "ok"]
    metrics["comm-rus"]["train/loss"] = 0.6  # a change of behaviour
    assert golden.main(["comm-rus", "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("comm-rus: DIFFERS\n  train/loss: 0.6 now, stored 0.5")
