"""The controls suite's registered protocols (mmib.bench.study_controls)."""

import numpy as np
import pytest
import torch

import mmib.bench.study_controls  # noqa: F401  (registers the protocols)
from mmib.bench.study_controls import variance_share
from mmib.data.datamodule import MultimodalDataModule
from mmib.data.synthetic.align import make_sim_align
from mmib.errors import UnknownNameError
from mmib.eval.protocols import PROTOCOLS, EvalContext
from mmib.methods.registry import build_method


def test_variance_share_closed_form():
    rng = np.random.default_rng(0)
    u, v = rng.standard_normal((4000, 3)), rng.standard_normal((4000, 3))
    z = np.hstack([u, 2 * v])  # u explains 3 of the 3 + 12 units of variance
    assert variance_share(z, u) == pytest.approx(3 / 15, abs=0.02)
    assert variance_share(z, np.hstack([u, v])) == pytest.approx(1.0, abs=1e-9)
    assert variance_share(z, rng.standard_normal(4000)) == pytest.approx(0.0, abs=2e-3)
    assert np.isnan(variance_share(np.ones((10, 2)), np.arange(10.0)))  # a constant embedding has no variance


def _ctx():
    ds = make_sim_align(n_samples=400, n_modalities=3, nuisance_scale=3.0)
    dm = MultimodalDataModule(ds, batch_size=64, seed=0)
    torch.manual_seed(0)
    method = build_method("ova_ib", ds.spec, {"head_layers": 0}, {"vector": {"hidden": [32]}})
    return EvalContext(method=method.eval(), dm=dm, seed=0)


def test_embedding_share_matches_an_independent_r2():
    from sklearn.linear_model import LinearRegression
    from sklearn.metrics import r2_score

    ctx = _ctx()
    res = PROTOCOLS["embedding_share"](ctx, None)
    mods = list(ctx.modalities)
    assert [r["id"] for r in res["rows"]] == [f"nuisance/{m}" for m in mods] + ["nuisance/mean"] + \
        [f"essence/{m}" for m in mods] + ["essence/mean"]
    got = {r["id"]: r["metrics"]["share"] for r in res["rows"]}
    # independently: the test split's embeddings from the method, row-normalized, and sklearn's variance-weighted R²
    b = ctx.dm.split_batch("test")
    with torch.no_grad():
        emb = ctx.method.embed(b, None, space="embedding")
    for m in mods:
        z = torch.nn.functional.normalize(emb[m].double(), dim=1).numpy()
        for name, lat in (("nuisance", f"nuisance_{m}"), ("essence", "essence")):
            x = np.asarray(b["latents"][lat], dtype=np.float64)
            want = r2_score(z, LinearRegression().fit(x, z).predict(x), multioutput="variance_weighted")
            assert got[f"{name}/{m}"] == pytest.approx(want, abs=1e-9)
    assert got["nuisance/mean"] == pytest.approx(np.mean([got[f"nuisance/{m}"] for m in mods]))
    assert all(0.0 <= v <= 1.0 for v in got.values())


def test_embedding_share_skips_undeclared_latents_and_checks_options():
    ctx = _ctx()
    res = PROTOCOLS["embedding_share"](ctx, {"latents": {"s": "share_{m}", "x": "nope_{m}"}})
    assert {r["id"].split("/")[0] for r in res["rows"]} == {"s"}
    assert any("nope_m0" in n or "not declared" in n for n in res["notes"])
    with pytest.raises(UnknownNameError, match="option of protocol 'embedding_share'"):
        PROTOCOLS["embedding_share"](ctx, {"latent": {}})
    with pytest.raises(UnknownNameError, match="split"):
        PROTOCOLS["embedding_share"](ctx, {"split": "dev"})
