"""mmib.eval.protocols.info_probe: information probes show which latent each representation holds, a data set
without latents is skipped with a note, and info_probe.where probes a latent on the rows where it is
expressed."""

import numpy as np
import pytest

from mmib.errors import MMIBError
from mmib.eval.protocols import (
    EvalContext,
    run_info_probe,
)

from ..conftest import IdentityMethod


def test_information_probes_show_what_each_representation_holds(latent_dm, tmp_path, fast_probe, png_ok):
    ctx = EvalContext(IdentityMethod(latent_dm.spec), latent_dm, out_dir=tmp_path)
    res = run_info_probe(ctx, {"include_raw": False, "probe_options": fast_probe})
    m = res["matrix"]
    assert m["latents"] == ["za", "zb", "shared", "cont", "y"]
    assert m["representations"] == ["rep:a", "rep:b", "rep:c", "concat", "fused", "component:A", "component:B"]
    v = {(r, lat): m["values"][i][j] for i, r in enumerate(m["representations"]) for j, lat in enumerate(m["latents"])}
    ch = m["chance"]
    assert v["rep:a", "za"] > 0.9 and v["rep:a", "zb"] < ch["zb"] + 0.1  # a holds za, not zb
    assert v["rep:b", "zb"] > 0.9 and v["rep:b", "za"] < ch["za"] + 0.1
    assert v["rep:a", "shared"] > 0.8 and v["rep:b", "shared"] > 0.8  # redundant information
    assert v["rep:c", "cont"] > 0.5 and v["rep:a", "cont"] < 0.1  # R² for the continuous latent
    assert m["kinds"]["cont"] == "regression" and ch["cont"] == 0.0
    assert v["concat", "za"] > 0.9 and v["concat", "zb"] > 0.9
    png_ok(tmp_path / res["plots"]["info_probe_matrix"])


def test_info_probe_without_latents_is_skipped_with_a_note(latent_dm):
    from mmib.data.datamodule import MultimodalDataModule
    from mmib.data.dataset import MultimodalDataset
    from mmib.data.spec import DatasetSpec

    ds = latent_dm.dataset
    spec = DatasetSpec("nolat", ds.spec.modalities, task="classification", n_classes=3)
    dm = MultimodalDataModule(MultimodalDataset(spec, {k: v.numpy() for k, v in ds.x.items()}, y=ds.y), seed=0)
    res = run_info_probe(EvalContext(IdentityMethod(spec), dm))
    assert res["rows"] == [] and "no ground-truth latents" in res["notes"][0]


def test_info_probe_where_probes_a_latent_on_the_rows_where_it_is_expressed(fast_probe):
    # 'amp' shows in modality a only when gate = 1 (as an amplitude exists only on task trials): probed on every row
    # it is diluted by the gate = 0 rows, probed on gate = 1 it is clear; the condition reaches every split
    from mmib.data.datamodule import MultimodalDataModule
    from mmib.data.dataset import MultimodalDataset
    from mmib.data.spec import DatasetSpec, ModalitySpec

    rng = np.random.default_rng(0)
    n = 800
    gate, amp = rng.integers(0, 2, n), rng.integers(0, 2, n)
    a = np.stack([gate * (2 * amp - 1) * 3.0, rng.normal(size=n)], 1) + 0.3 * rng.normal(size=(n, 2))
    b = rng.normal(size=(n, 2))
    spec = DatasetSpec("gated", (ModalitySpec("a", "vector", (2,)), ModalitySpec("b", "vector", (2,))),
                       task="classification", n_classes=2, latents={"gate": 2, "amp": 2})
    dm = MultimodalDataModule(MultimodalDataset(spec, {"a": a, "b": b}, y=gate, latents={"gate": gate, "amp": amp}),
                              batch_size=64, seed=0)
    ctx = EvalContext(IdentityMethod(spec), dm)
    opts = {"include_raw": False, "include_label": False, "representations": ["rep:a"], "probe_options": fast_probe}
    plain = run_info_probe(ctx, opts)
    gated = run_info_probe(ctx, {**opts, "where": {"amp": {"gate": 1}}})
    score = {r["latent"]: r["metrics"]["score"] for r in plain["rows"]}
    score_g = {r["latent"]: r for r in gated["rows"]}
    assert score_g["amp"]["metrics"]["score"] > 0.95 and score["amp"] < 0.85
    te_gate = gate[dm.indices["test"]]
    assert score_g["amp"]["n_test"] == int((te_gate == 1).sum()) and score_g["amp"]["where"] == {"gate": 1}
    assert "where" not in score_g["gate"]  # other columns keep every row
    assert any("amp: probed on the rows with gate = 1" in note for note in gated["notes"])
    with pytest.raises(MMIBError, match="unknown latent of info_probe.where 'nope'; valid: amp, gate"):
        run_info_probe(ctx, {**opts, "where": {"nope": {"gate": 1}}})
    with pytest.raises(MMIBError, match="unknown latent of info_probe.where.amp 'gat'"):
        run_info_probe(ctx, {**opts, "where": {"amp": {"gat": 1}}})
    with pytest.raises(MMIBError, match="info_probe.where.amp: no train row has gate = 5"):
        run_info_probe(ctx, {**opts, "where": {"amp": {"gate": 5}}})
