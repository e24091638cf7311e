"""mmib.eval.protocols.subsets: the modality subsets, the subsets protocol's table and heatmap on a data set
with known information structure, and its batched probes against one probe per subset."""

import pytest

from mmib.errors import MMIBError
from mmib.eval.protocols import (
    EvalContext,
    modality_subsets,
    run_subsets,
)

from ..conftest import IdentityMethod


def test_subsets_table_and_heatmap(latent_dm, tmp_path, fast_probe, png_ok):
    ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm, out_dir=tmp_path)
    res = run_subsets(ctx, {"probe_options": fast_probe})
    subsets = ["+".join(r["subset"]) for r in res["rows"]]
    assert subsets == ["a", "b", "c", "a+b", "a+c", "b+c", "a+b+c"]  # 2^3 - 1
    acc = {s: r["metrics"]["accuracy"] for s, r in zip(subsets, res["rows"])}
    assert acc["c"] < 0.5 < acc["a"]  # c holds nothing about y = shared; a does
    png_ok(tmp_path / res["plots"]["subsets_heatmap"])


class _SubsetDependentMethod(IdentityMethod):
    """Each modality's representation depends on how many modalities were requested (the batched subset probes
    must not assume per-modality blocks here)."""

    name = "subset_dependent_test"

    def embed(self, batch, modalities=None, space="representation"):
        out = super().embed(batch, modalities, space)
        return {m: v * len(out) for m, v in out.items()}


def test_subsets_batched_probes_equal_one_by_one(latent_dm, monkeypatch, fast_probe):
    from mmib.eval.protocols import subsets as P

    ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm)
    batched = run_subsets(ctx, {"probe_options": fast_probe, "baseline_raw": True})
    monkeypatch.setattr(P, "_batched_subset_rows", lambda *a, **k: None)
    single = run_subsets(EvalContext(IdentityMethod(latent_dm.spec), latent_dm),
                         {"probe_options": fast_probe, "baseline_raw": True})
    assert [r["id"] for r in batched["rows"]] == [r["id"] for r in single["rows"]]
    for a, b in zip(batched["rows"], single["rows"]):
        assert a["epochs"] == b["epochs"] and a["dim"] == b["dim"], a["id"]
        for k, v in b["metrics"].items():
            assert a["metrics"][k] == pytest.approx(v, abs=0.02), (a["id"], k)


def test_subsets_batched_probes_only_where_blocks_apply(latent_dm, fast_probe):
    from mmib.eval.protocols.subsets import SubsetOptions, _batched_subset_rows, modality_subsets

    subs = modality_subsets(list(latent_dm.spec.modality_names))
    ctx = EvalContext(_SubsetDependentMethod(latent_dm.spec), latent_dm)
    assert _batched_subset_rows(ctx, SubsetOptions(probe_options=fast_probe), subs, ["method"]) is None
    ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm)
    assert _batched_subset_rows(ctx, SubsetOptions(probe="mlp", probe_options=fast_probe), subs, ["method"]) is None
    assert _batched_subset_rows(ctx, SubsetOptions(probe_options=fast_probe), subs, ["method"]) is not None


def test_subset_enumeration():
    assert len(modality_subsets(["a", "b", "c", "d"])) == 15
    assert modality_subsets(["a", "b", "c"], [1, 3]) == [("a",), ("b",), ("c",), ("a", "b", "c")]
    with pytest.raises(MMIBError, match="sizes must lie in 1..3"):
        modality_subsets(["a", "b", "c"], [4])
