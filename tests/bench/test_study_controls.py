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
    # fitted and scored on the same 300 rows, an unrelated 8-d latent reads about k / (n - 1) by chance; fitted on
    # other rows it reads about 0 (slightly below: out of sample)
    inside = [variance_share(z[:300], rng.standard_normal((300, 8))) for _ in range(20)]
    outside = [variance_share(z[:300], rng.standard_normal((300, 8)), z[300:], rng.standard_normal((3700, 8)))
               for _ in range(20)]
    assert np.mean(inside) == pytest.approx(8 / 299, rel=0.25)
    assert -0.03 < np.mean(outside) < 0.003
    # out of sample on the true latent: still the population share
    assert variance_share(z[:2000], u[:2000], z[2000:], u[2000:]) == pytest.approx(3 / 15, abs=0.03)


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
    # independently: the embeddings from the method, row-normalized; sklearn's regression fitted on the train split and
    # its variance-weighted R² on the test split
    bs = {sp: ctx.dm.split_batch(sp) for sp in ("train", "test")}
    with torch.no_grad():
        emb = {sp: ctx.method.embed(b, None, space="embedding") for sp, b in bs.items()}
    for m in mods:
        z = {sp: torch.nn.functional.normalize(e[m].double(), dim=1).numpy() for sp, e in emb.items()}
        for name, lat in (("nuisance", f"nuisance_{m}"), ("essence", "essence")):
            x = {sp: np.asarray(b["latents"][lat], dtype=np.float64) for sp, b in bs.items()}
            fit = LinearRegression().fit(x["train"], z["train"])
            want = r2_score(z["test"], fit.predict(x["test"]), multioutput="variance_weighted")
            assert got[f"{name}/{m}"] == pytest.approx(want, abs=1e-9)
    assert got["nuisance/mean"] == pytest.approx(np.mean([got[f"nuisance/{m}"] for m in mods]))
    assert all(v <= 1.0 for v in got.values())
    # fit_split = split: the in-sample R² (higher: the fit sees the scored rows)
    inside = PROTOCOLS["embedding_share"](ctx, {"fit_split": "test"})["rows"]
    assert all(r["metrics"]["share"] >= got[r["id"]] - 1e-12 for r in inside)


def test_embedding_share_skips_undeclared_latents_and_checks_options():
    ctx = _ctx()
    res = PROTOCOLS["embedding_share"](ctx, {"latents": {"s": "share_{m}", "x": "nope_{m}"}})
    assert {r["id"].split("/")[0] for r in res["rows"]} == {"s"}
    assert any("nope_m0" in n or "not declared" in n for n in res["notes"])
    with pytest.raises(UnknownNameError, match="option of protocol 'embedding_share'"):
        PROTOCOLS["embedding_share"](ctx, {"latent": {}})
    with pytest.raises(UnknownNameError, match="split"):
        PROTOCOLS["embedding_share"](ctx, {"split": "dev"})
    with pytest.raises(UnknownNameError, match="fit_split"):
        PROTOCOLS["embedding_share"](ctx, {"fit_split": "all"})
