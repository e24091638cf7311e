"""mmib.eval.protocols.probe: the probe protocol's rows (method and raw baseline), skipped representations a
method lacks, the method's own predictions and the option aliases."""

import numpy as np
import pytest

from mmib.errors import UnknownNameError
from mmib.eval.protocols import (
    EvalContext,
    run_probe,
)

from ..conftest import IdentityMethod, PredictingMethod

FAST = {"max_epochs": 60, "patience": 10}


def test_probe_protocol_rows_and_missing_capabilities(latent_dm):
    ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm)
    res = run_probe(ctx, {"probes": ["linear"], "representations": ["concat", "fused", "components"],
                          "probe_options": FAST})
    ids = [r["id"] for r in res["rows"]]
    assert ids == ["method/concat/linear", "method/fused/linear", "method/component:A/linear",
                   "method/component:B/linear", "raw/concat/linear"]
    by = {r["id"]: r for r in res["rows"]}
    # the identity method's representation IS the raw input: same features, same seed -> same numbers
    assert by["method/concat/linear"]["metrics"] == by["raw/concat/linear"]["metrics"]
    assert by["method/concat/linear"]["metrics"]["accuracy"] > 0.9  # y = shared, held by a and b
    assert "cross-entropy" in by["method/concat/linear"]["probe_description"]

    from mmib.methods.registry import build_method

    clip = build_method("clip", latent_dm.spec, {"representation_dim": 16, "embed_dim": 8, "head_layers": 1},
                        {"vector": {"hidden": [16]}})
    res = run_probe(EvalContext(clip, latent_dm), {"representations": ["concat", "fused", "components"],
                                                   "baseline_raw": False, "probe_options": FAST})
    assert [r["id"] for r in res["rows"]] == ["method/concat/linear"]
    assert any("fused skipped" in n and "has no fused representation" in n for n in res["notes"])
    assert any("components skipped" in n for n in res["notes"])
    with pytest.raises(UnknownNameError, match="unknown option of protocol 'probe' 'probe'"):
        run_probe(EvalContext(clip, latent_dm), {"probe": "linear"})


def test_own_predictions_row(latent_dm):
    res = run_probe(EvalContext(PredictingMethod(latent_dm.spec), latent_dm),
                    {"baseline_raw": False, "probe_options": FAST})
    own = [r for r in res["rows"] if r["id"] == "method/predict/own"]
    assert len(own) == 1
    te_y = latent_dm.dataset.y.numpy()[latent_dm.indices["test"]]
    assert own[0]["metrics"]["accuracy"] == pytest.approx(np.mean(te_y == 0))  # always predicts class 0


# ------------------------------------------------------------------------------------------------ option aliases
def test_probe_representation_singular_is_an_alias(latent_dm):
    ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm)
    res = run_probe(ctx, {"representation": "fused", "baseline_raw": False, "probe_options": FAST})
    assert [r["id"] for r in res["rows"]] == ["method/fused/linear"]
    assert res["options"]["representations"] == ["fused"]
    # as `mmib eval --representation concat --option probe.representation=...` passes them: the singular wins
    res = run_probe(ctx, {"representations": ["concat"], "representation": "rep:a,fused", "baseline_raw": False,
                          "probe_options": FAST})
    assert [r["id"] for r in res["rows"]] == ["method/rep:a/linear", "method/fused/linear"]
    with pytest.raises(UnknownNameError, match=r"unknown option of protocol 'probe' 'represent'; did you mean 'representation'.*valid: .*representation,"):
        run_probe(ctx, {"represent": "fused"})
