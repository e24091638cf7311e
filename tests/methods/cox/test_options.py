"""mmib.methods.cox.options: the typed ablation flag (read once), its config word, and the perceptor method's
defaults."""

from __future__ import annotations

import pytest

from mmib.data.synthetic.cox_sim import make_cox_sim
from mmib.methods.registry import build_method

SMALL = {"n_im": 120, "n_oom": 120, "n_val": 20, "n_test": 30}


def _method(ds, **cfg):
    base = {"name": "cox", "head_fit": {"steps": 10, "lr": 0.05}, "centroid_steps": 5, "mmd_steps": 5}
    base.update(cfg)
    return build_method(base["name"], ds.spec, base, {"vector": {"type": "mlp", "hidden": [16]}})


@pytest.mark.parametrize("ablation", ["none", "no_connection", "no_exploration", "no_warmup"])
def test_the_ablation_is_a_typed_flag_read_once(ablation):
    from mmib.methods.cox.options import COXAblation

    ds = make_cox_sim(**SMALL, seed=0)
    m = _method(ds, ablation=ablation, scenario="unsup")
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
