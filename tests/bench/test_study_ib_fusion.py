"""The ib-fusion study's callback and registered protocols (mmib.bench.study_ib_fusion)."""

import json

import numpy as np
import pytest
import torch

import mmib.bench.study_ib_fusion as study
from mmib.config import compose_config
from mmib.data.datamodule import MultimodalDataModule
from mmib.data.synthetic.omib_sim import load_omib_sim, make_omib_sim, reference_classifiers
from mmib.errors import MMIBError, UnknownNameError
from mmib.eval.protocols import PROTOCOLS, EvalContext
from mmib.info.omib_information import mine_cache_path

SIZES = {"d0": 6, "d0_superfluous": 5, "d11": 4, "d21": 3, "d12": 5, "d22": 4}


def test_summarize_r_per_epoch():
    hist = [(3, 0, 0.5, 2.0), (3, 1, 1.5, 0.5), (4, 2, 2.0, 0.25), (4, 3, 3.0, 0.1), (4, 4, 0.2, 9.0)]
    s = study.summarize_r(hist, 1)
    assert [e["epoch"] for e in s] == [3, 4] and [e["batches"] for e in s] == [2, 3]
    assert s[0]["r_1"] == pytest.approx(1.0) and s[0]["frac_r_gt1_1"] == pytest.approx(0.5)
    assert s[1]["r_1"] == pytest.approx((2.0 + 3.0 + 0.2) / 3) and s[1]["frac_r_gt1_1"] == pytest.approx(2 / 3)
    assert s[1]["R_1"] == pytest.approx((0.25 + 0.1 + 9.0) / 3)


def test_r_trace_callback_and_omib_study_on_a_trained_omib(tmp_path, monkeypatch):
    from mmib.engine import train

    ov = ["method=omib", "data=omib_sim", "data.n_samples=400", *[f"data.{k}={v}" for k, v in SIZES.items()],
          "method.representation_dim=8", "method.latent_dim=4", "method.head_hidden=[8]", "method.vae_hidden=8",
          "method.can_heads=2", "method.warmup_epochs=1", "method.beta_seed=0",
          "method.information={entropies:[3.0,2.0],mutual_informations:[[0,1,1.0]]}",
          "encoder.vector.hidden=[8]", "trainer.max_epochs=3", "trainer.enable_progress_bar=false",
          "data.batch_size=64", f"run_dir={tmp_path}", "name=r", "seed=0"]
    res = train(compose_config(ov), callbacks=[study.r_trace()])
    m = res.method
    trace = json.loads((res.run_dir / study.R_TRACE_FILE).read_text())
    assert trace["r_mode"] == "mean_of_ratios" and [e["epoch"] for e in trace["epochs"]] == [1, 2]
    for e in trace["epochs"]:  # the same numbers as the method's own per-batch history
        r = [t[2] for t in m.r_history if t[0] == e["epoch"]]
        assert e["batches"] == len(r) and e["r_1"] == pytest.approx(float(np.mean(r)))
    ctx = EvalContext(method=m, dm=res.datamodule, seed=0, run_dir=res.run_dir)
    out = PROTOCOLS["omib_study"](ctx, {})
    rows = {r["id"]: r["metrics"] for r in out["rows"]}
    assert rows["omib/beta"]["beta"] == pytest.approx(float(m.beta))
    assert rows["omib/beta"]["M_l"] <= rows["omib/beta"]["beta"] <= rows["omib/beta"]["M_u"]
    te = res.datamodule.split_batch("test")
    with torch.no_grad():
        acc = float((m.unimodal_predict(te, "x2", seed=0).argmax(1) == te["y"]).double().mean())
    assert rows["omib/trb/x2"]["accuracy"] == pytest.approx(acc)
    r = rows["omib/r/x2"]
    assert r["first_main_epoch"] == 1 and r["last_epoch"] == 2
    assert r["mean_r_first"] == pytest.approx(trace["epochs"][0]["r_1"])
    assert r["mean_r_last"] == pytest.approx(trace["epochs"][1]["r_1"])
    assert r["max_epoch_mean_r"] == pytest.approx(max(e["r_1"] for e in trace["epochs"]))
    allr = [t[2] for t in m.r_history]
    assert r["frac_r_gt1"] == pytest.approx(float(np.mean(np.asarray(allr) > 1)))
    assert rows["omib/beta"]["H_x1"] == pytest.approx(3.0) and rows["omib/beta"]["I_0_1"] == pytest.approx(1.0)
    # a reloaded run has no method.information: the MINE estimates come from OMIB's cache when they are there
    info, m.information = m.information, None
    monkeypatch.setenv("MMIB_CACHE_DIR", str(tmp_path / "cache"))
    assert "H_x1" not in {r["id"]: r["metrics"] for r in PROTOCOLS["omib_study"](ctx, {})["rows"]}["omib/beta"]
    tr = res.datamodule.split_batch("train")
    n = len(tr["y"])
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(int(m.mine_cfg["seed"])))
    idx = idx[: int(m.mine_cfg["max_samples"])]
    path = mine_cache_path([tr["x"][k][idx].reshape(len(idx), -1).float() for k in m.mods],
                           {k: m.mine_cfg[k] for k in ("steps", "batch_size", "lr", "hidden_dim", "seed")})
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({**info.to_dict(), "entropies": [4.5, 2.5]}))
    beta = {r["id"]: r["metrics"] for r in PROTOCOLS["omib_study"](ctx, {})["rows"]}["omib/beta"]
    assert beta["H_x1"] == pytest.approx(4.5) and beta["H_x2"] == pytest.approx(2.5)
    # without the callback's file the r rows are missing and a note says so
    out = PROTOCOLS["omib_study"](EvalContext(method=m, dm=res.datamodule, seed=0, run_dir=tmp_path), {})
    assert not any(r["id"].startswith("omib/r/") for r in out["rows"]) and "no r trace" in out["notes"][-1]
    with pytest.raises(UnknownNameError, match="omib_study"):
        PROTOCOLS["omib_study"](ctx, {"splt": "test"})


def _dm(seed=0, n=600):
    ds = load_omib_sim("I", n_samples=n, **SIZES)
    return MultimodalDataModule(ds, batch_size=64, seed=seed)


def test_omib_reference_equals_reference_classifiers_on_the_run_split(tmp_path, monkeypatch):
    monkeypatch.setenv("MMIB_CACHE_DIR", str(tmp_path))
    dm = _dm(seed=2)
    ctx = EvalContext(method=None, dm=dm, seed=2)
    out = PROTOCOLS["omib_reference"](ctx, {})
    d = make_omib_sim(600, "I", **SIZES)
    want = reference_classifiers(d.blocks, d.y, dm.indices["train"], dm.indices["test"])
    got = {r["id"].split("/", 1)[1]: r["metrics"]["accuracy"] for r in out["rows"]}
    assert got == pytest.approx(want)
    assert len(list((tmp_path / "omib_reference").glob("*.json"))) == 1
    assert {r["id"]: r["metrics"] for r in PROTOCOLS["omib_reference"](ctx, {})["rows"]} == \
        {r["id"]: r["metrics"] for r in out["rows"]}  # from the cache


class _Oracle(torch.nn.Module):
    """A 'method' whose fused representation is the relevant blocks' contributions <δ_i, a_i> (+ noise columns)."""

    def __init__(self, d: "np.ndarray"):
        super().__init__()
        self.delta = d.delta
        self.sizes = {b: d.blocks[b].shape[1] for b in ("a0", "a1", "a2")}
        self.name = "oracle"

    @property
    def device(self):
        return torch.device("cpu")

    def fuse(self, batch):
        cols, o = [], 0
        for b in ("a0", "a1", "a2"):
            v = torch.as_tensor(self.delta[o:o + self.sizes[b]], dtype=torch.float64)
            cols.append(batch["latents"][b].double() @ v)
            o += self.sizes[b]
        g = torch.Generator().manual_seed(0)
        return torch.stack([*cols, *torch.randn(2, len(cols[0]), generator=g, dtype=torch.float64)], 1)


def test_omib_probes_find_the_decision_contributions_and_no_superfluous_block():
    dm = _dm()
    d = make_omib_sim(600, "I", **SIZES)
    ctx = EvalContext(method=_Oracle(d), dm=dm, seed=0)
    met = PROTOCOLS["omib_probes"](ctx, {"alpha": 1e-6})["rows"][0]["metrics"]
    for b in ("a0", "a1", "a2"):
        assert met[b] > 0.999
    for b in ("b0", "b1", "b2"):
        assert met[b] < 0.05
    # the per-coordinate R² of a whole block stays far below the contribution's: one direction in many coordinates
    assert met["coord/a1"] < 0.6 * met["a1"]
    with pytest.raises(MMIBError, match="could not redraw"):
        PROTOCOLS["omib_probes"](ctx, {"data_seed": 1})


def test_fixed_beta_with_estimate_bounds_trains_and_reports_the_range(tmp_path, monkeypatch):
    """The β sweep's setting (``beta`` fixed, ``estimate_bounds: true``): the main phase gets the training data for
    MINE (it used to fail with 'estimating the β bounds needs the training data'), β stays the fixed value."""
    from mmib.engine import train

    monkeypatch.setenv("MMIB_CACHE_DIR", str(tmp_path / "cache"))
    ov = ["method=omib", "data=omib_sim", "data.n_samples=300", *[f"data.{k}={v}" for k, v in SIZES.items()],
          "method.representation_dim=8", "method.latent_dim=4", "method.head_hidden=[8]", "method.vae_hidden=8",
          "method.can_heads=2", "method.warmup_epochs=1", "method.beta=0.001", "method.estimate_bounds=true",
          "method.mine.steps=5", "method.mine.batch_size=32", "encoder.vector.hidden=[8]", "trainer.max_epochs=2",
          "trainer.enable_progress_bar=false", "data.batch_size=64", f"run_dir={tmp_path}", "name=b", "seed=0"]
    m = train(compose_config(ov)).method
    assert float(m.beta) == pytest.approx(0.001)
    assert np.isfinite(float(m.beta_lower)) and np.isfinite(float(m.beta_upper))
    assert m.information is not None and len(m.information.entropies) == 2
