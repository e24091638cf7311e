"""mmib.methods.cox.options: the typed ablation flag (read once), its config word, and the perceptor method's
defaults."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("ablation", ["none", "no_connection", "no_exploration", "no_warmup"])
def test_the_ablation_is_a_typed_flag_read_once(ablation, small_cox_sim, cox_method):
    from mmib.methods.cox.options import COXAblation

    ds = small_cox_sim(seed=0)
    m = cox_method(ds, ablation=ablation, scenario="unsup")
    assert m.ablation is COXAblation(ablation) and str(m.ablation) == ablation
    assert (m.use_connection, m.explores) == (ablation != "no_connection", ablation != "no_exploration")
    assert m.warmup_epochs == (0 if ablation == "no_warmup" else m.opts.warmup_epochs)


def test_ablation_words_and_perceptor_method_defaults():
    from mmib.methods.cox.options import COXAblation, PerceptorOptions, perceptor_method_defaults

    assert [str(a) for a in COXAblation] == ["none", "no_connection", "no_exploration", "no_warmup"]
    assert f"{COXAblation.NO_WARMUP}" == "no_warmup" and COXAblation("none") is COXAblation.NONE
    with pytest.raises(ValueError):
        COXAblation("no_vib")
    d = perceptor_method_defaults()
    assert d == {"name": "clip", "representation_dim": 16, "embed_dim": 16, "head_layers": 2}
    d["name"] = "changed"
    assert perceptor_method_defaults()["name"] == "clip"  # a fresh mapping each call
    assert PerceptorOptions().type in ("identity", "random_linear", "run", "pretrain")
