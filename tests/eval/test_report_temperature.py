"""The learned temperature of a run: logged at the end of training, carried into results.json, flagged in reports
when it moved by less than 20 %."""

import json

import pytest

from mmib.eval.report import learned_temperature_lines, temperature_note, temperature_summary


def test_summary_and_flag():
    assert temperature_summary({"train/loss": 1.0}) is None
    moved = temperature_summary({"initial_temperature": 0.07, "final_temperature": 0.035})
    assert moved["relative_change"] == pytest.approx(-0.5) and not moved["flagged"]
    stuck = temperature_summary({"initial_temperature": 0.07, "final_temperature": 0.063})
    assert stuck["flagged"] and "moved < 20 %" in temperature_note(stuck)
    assert "moved <" not in temperature_note(moved)
    runs = [{"variant": "symile", "data": "d", "seed": 0, "learned_temperature": stuck},
            {"variant": "gram", "data": "d", "seed": 0, "learned_temperature": moved},
            {"variant": "clip", "data": "d", "seed": 0, "learned_temperature": None}]
    text = "\n".join(learned_temperature_lines(runs))
    assert "2 runs learn their temperature; 1 moved by less than 20 %" in text and "symile · d · seed 0" in text
    assert learned_temperature_lines(runs[2:]) == []


def test_training_logs_final_temperature_and_evaluation_reports_it(tmp_path):
    from mmib.config import compose_config
    from mmib.engine import train
    from mmib.eval.evaluate import evaluate_run

    cfg = compose_config(["method=symile", "data=xor_align", "data.n_samples=300", "trainer.max_epochs=2",
                          "trainer.enable_progress_bar=false", f"run_dir={tmp_path}", "name=t",
                          "method.optim.temperature_lr=0.05", "method.representation_dim=16",
                          "method.embed_dim=16", "encoder.vector.hidden=[16]"])
    res = train(cfg)
    fm = json.loads((res.run_dir / "run.json").read_text())["final_metrics"]
    assert fm["initial_temperature"] == pytest.approx(0.07)
    # a temperature learning rate of 0.05 moves log(1/τ) by ~0.05 per step: far from 0.07 after 2 epochs
    assert fm["final_temperature"] == pytest.approx(res.method.objective.temperature.value, rel=1e-6)
    assert abs(fm["final_temperature"] / 0.07 - 1) > 0.2
    out = evaluate_run(res.run_dir, protocols=["retrieval"], out_dir=tmp_path / "eval", progress=False)
    assert out["learned_temperature"]["final"] == pytest.approx(fm["final_temperature"])
    assert not out["learned_temperature"]["flagged"]
    assert "learned temperature" in (tmp_path / "eval" / "report.md").read_text()
