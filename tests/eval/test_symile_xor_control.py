"""Symile's positive control (slow): on xor_align — three modalities pairwise independent, jointly dependent —
Symile retrieves the missing modality's symbol far above chance and CLIP cannot; on the pairwise negative control
both retrieve it and Symile's margin is gone (less than 10 points). The controls suite (src/mmib/bench/suites/controls.yaml) runs the same with 3 seeds and
M = 3, 4."""

import pytest


def _class_top1(tmp_path, method: str, structure: str) -> tuple[float, float]:
    from mmib.config import compose_config
    from mmib.engine import train
    from mmib.eval.evaluate import evaluate_run

    name = f"{method}-{structure}"
    cfg = compose_config([f"method={method}", "data=xor_align", "data.n_modalities=3", f"data.structure={structure}",
                          "data.flip=" + ("0.3" if structure == "pairwise" else "0.0"), "trainer.max_epochs=20",
                          "trainer.enable_progress_bar=false", f"run_dir={tmp_path}", f"name={name}", "seed=0"])
    res = train(cfg)
    out = evaluate_run(res.run_dir, protocols=[{"protocol": "retrieval", "directions": "last"}],
                       out_dir=tmp_path / f"{name}-eval", progress=False)
    row = next(r for r in out["protocols"]["retrieval"]["rows"] if r["source"] == "method")
    assert row["direction"] == "m0+m1->m2"
    return row["metrics"]["class_top1"], row["chance"]["class_top1"]


@pytest.mark.slow
def test_symile_beats_clip_on_xor_and_not_on_the_pairwise_control(tmp_path):
    sym, chance = _class_top1(tmp_path, "symile", "xor")
    clip, _ = _class_top1(tmp_path, "clip", "xor")
    assert chance == pytest.approx(0.25, abs=0.03)
    assert abs(clip - chance) < 0.05  # pairwise independent modalities: nothing for CLIP to align
    assert sym - clip >= 0.25
    # negative control (pairwise dependent, no synergy): both retrieve far above chance and Symile's advantage is
    # gone — measured on seed 0: 51.8 vs 47.3 %, within seed noise (docs/methods/symile.md), against 27.7 points on XOR
    sym_c, _ = _class_top1(tmp_path, "symile", "pairwise")
    clip_c, _ = _class_top1(tmp_path, "clip", "pairwise")
    assert clip_c > chance + 0.1
    assert sym_c - clip_c < 0.10
