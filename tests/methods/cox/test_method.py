"""mmib.methods.cox.method: the VIB connection, gradient hygiene, the L = M reduction, labels of unpaired OOM rows
never read, the CLI path, config errors, the loss terms of each ablation and the optional prior KL."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from mmib.config import compose_config
from mmib.data.dataset import MultimodalDataset
from mmib.data.spec import DatasetSpec, ModalitySpec
from mmib.errors import MMIBError
from mmib.methods.cox import COXMethod, VIBConnection


# ------------------------------------------------------------------ VIB
def test_vib_shapes_and_sampling():
    vib = VIBConnection(5, 7, latent_dim=3, hidden=8, depth=1)
    z = torch.randn(4, 5)
    vib.train()
    m1, mu, logvar = vib(z)
    m2, _, _ = vib(z)
    assert m1.shape == (4, 7) and mu.shape == (4, 3) and logvar.shape == (4, 3)
    assert not torch.allclose(m1, m2)  # stochastic in train mode
    vib.eval()
    e1, mu_e, _ = vib(z)
    e2, _, _ = vib(z)
    assert torch.equal(e1, e2) and torch.allclose(e1, vib.dec(mu_e))  # v = mu in eval mode
    assert torch.equal(vib(z, sample=False)[0], e1)


# ------------------------------------------------------------------ gradient hygiene
@pytest.mark.parametrize("perceptor", ["random_linear", "pretrain"])
def test_no_gradient_into_frozen_parts(perceptor, small_cox_sim, cox_method, cox_dm):
    ds = small_cox_sim(seed=0)
    pc = {"type": perceptor, "dim": 16, "epochs": 1, "method": {"name": "clip", "representation_dim": 8,
                                                               "embed_dim": 8, "head_layers": 1}}
    meth = cox_method(ds, perceptor=pc, connect_epochs=0)
    dm = cox_dm(ds)
    meth.build_cache(dm.split_batch("train"), len(ds))
    meth.refresh(0)
    frozen = {n: p.detach().clone() for n, p in meth.named_parameters()
              if n.startswith(("perceptor", "im_heads", "optimal_heads"))}
    meth.train()
    meth.perceptors.train()
    out = meth.loss(next(iter(dm.train_dataloader())))
    assert "kl" in out.terms
    out.loss.backward()
    for n, p in meth.named_parameters():
        if n.startswith(("perceptor", "im_heads", "optimal_heads")):
            assert p.grad is None, n
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in meth.oom_encoder.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in meth.connections.parameters())
    opt_params = {id(p) for g in meth.configure_optimizers().param_groups for p in g["params"]}
    for n, p in meth.named_parameters():
        if n.startswith(("perceptor", "im_heads", "optimal_heads")):
            assert id(p) not in opt_params, n
    meth.refresh(1)  # refits h_k^* but never touches the perceptor
    for n, p in meth.named_parameters():
        if n.startswith("perceptor"):
            assert torch.equal(p, frozen[n]), n


@pytest.mark.parametrize("detach", [False, True])
def test_reconstruction_gradient_reaches_oom_learner_only_without_detach(detach, small_cox_sim, cox_method):
    ds = small_cox_sim(seed=0)
    meth = cox_method(ds, detach_oom_target=detach)
    meth.train()
    z_o = meth.encode_oom(torch.randn(6, 32))
    rec, _ = meth._recon(z_o, {m: torch.randn(6, 16) for m in meth.im})
    rec.backward()
    reached = any(p.grad is not None and p.grad.abs().sum() > 0 for p in meth.oom_encoder.parameters())
    assert reached is (not detach)


# ------------------------------------------------------------------ L = M, K = 1 reduction
def test_all_paired_single_im_reduces_to_supervised_plus_reconstruction(cox_method, cox_dm):
    rng = np.random.default_rng(0)
    n = 64
    y = rng.integers(0, 3, n)
    spec = DatasetSpec("toy", (ModalitySpec("im", "vector", (4,)), ModalitySpec("oom", "vector", (5,))),
                       task="classification", n_classes=3)
    ds = MultimodalDataset(spec, {"im": rng.normal(size=(n, 4)) + y[:, None], "oom": rng.normal(size=(n, 5))},
                           y=y, split=np.array(["train"] * 48 + ["val"] * 8 + ["test"] * 8))
    meth = cox_method(ds, connect_epochs=0, oom_dim=4)
    dm = cox_dm(ds, bs=16)
    meth.build_cache(dm.split_batch("train"), len(ds))
    meth.refresh(0)
    assert meth._roles["in_d"].sum() == 0 and (meth._roles["label"] >= 0).sum() == 0  # no unlabelled OOM rows
    meth.eval()  # deterministic mapping, in-batch pairs
    batch = dm.split_batch("train")
    out = meth.loss(batch)
    with torch.no_grad():
        z = meth.oom_encoder(batch["x"]["oom"])
        m = meth.connections["im"](batch["x"]["im"], sample=False)[0]
        want = F.cross_entropy(meth.oom_head(z), batch["y"]) + ((z - m) ** 2).sum(1).mean() / z.shape[1]
    assert float(out.loss.detach()) == pytest.approx(float(want), rel=1e-6)
    assert set(out.terms) == {"ce_labelled", "recon"}
    # training: phase "explore" adds nothing (D and the pseudo-labelled anchors are empty)
    meth.train()
    torch.manual_seed(1)
    out_t = meth.loss(next(iter(dm.train_dataloader())))
    assert float(out_t.terms["kl"]) == 0.0 and "ce_anchor" not in out_t.terms


# ------------------------------------------------------------------ the method never reads labels of unpaired OOM rows
def _train_params(ds, overrides, tmp_path):
    from mmib.engine import train

    cfg = compose_config(["method=cox", "data=cox_sim", "trainer.max_epochs=2", "trainer.enable_progress_bar=false",
                          f"run_dir={tmp_path}", "encoder.vector.hidden=[16]", "method.head_fit.steps=10",
                          "method.centroid_steps=5", "method.mmd_steps=5", "data.batch_size=32", *overrides])
    res = train(cfg, dataset=ds)
    return {k: v.detach().clone() for k, v in res.method.state_dict().items()}


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["semi", "unsup"])
def test_labels_of_unpaired_oom_rows_are_never_read(scenario, tmp_path, small_cox_sim):
    over = [f"method.scenario={scenario}", "method.connect_epochs=1", "method.warmup_epochs=1"]
    ds = small_cox_sim(scenario=scenario, seed=0)
    a = _train_params(ds, over, tmp_path / "a")
    ds2 = small_cox_sim(scenario=scenario, seed=0)
    only_oom = (ds2.mask["oom"] & ~ds2.mask["im1"]).numpy() & (ds2.split == "train")
    y = ds2.y.numpy().copy()
    y[only_oom] = (y[only_oom] + 1) % 10
    ds2.y = torch.from_numpy(y)
    b = _train_params(ds2, over, tmp_path / "b")
    for k in a:
        assert torch.equal(a[k], b[k]), k


# ------------------------------------------------------------------ the CLI path
def test_mmib_train_method_cox_data_cox_sim(tmp_path):
    from mmib.engine import train

    cfg = compose_config(["method=cox", "data=cox_sim", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
                          f"run_dir={tmp_path}", "data.n_im=100", "data.n_oom=100", "data.n_val=20", "data.n_test=20",
                          "method.head_fit.steps=5", "method.connect_epochs=0"])
    res = train(cfg)
    b = res.datamodule.split_batch("test")
    assert res.method.predict(b).shape == (20, 10)
    emb = res.method.embed(b, space="embedding")
    assert {k: v.shape[1] for k, v in emb.items()} == {"im1": 16, "im2": 16, "oom": 16}
    assert set(res.method.components(b)) == {"oom", "hstar:im1", "hstar:im2", "map:im1", "map:im2"}


def test_bad_configs_raise_clear_errors(small_cox_sim, cox_method):
    ds = small_cox_sim(seed=0)
    with pytest.raises(MMIBError, match="scenario"):
        cox_method(ds, scenario="weak")
    with pytest.raises(MMIBError, match="no_warmup"):
        cox_method(ds, ablation="no_warmup")
    with pytest.raises(MMIBError, match="oom_modality"):
        cox_method(ds, oom_modality="audio")
    with pytest.raises(MMIBError, match="oom_dim"):
        cox_method(ds, ablation="no_connection", oom_dim=8)
    with pytest.raises(MMIBError, match="perceptor.type"):
        cox_method(ds, perceptor={"type": "imagebind"})
    with pytest.raises(MMIBError, match="run_dir"):
        cox_method(ds, perceptor={"type": "run"})
    assert isinstance(cox_method(ds), COXMethod)
    with pytest.raises(MMIBError, match=r"method.ablation must be one of 'none', 'no_connection', 'no_exploration', "
                                        r"'no_warmup', got 'no_vib'"):
        cox_method(ds, ablation="no_vib")


# ------------------------------------------------------------------ ablations: the loss terms each one produces
def _explore_terms(cox_method, cox_dm, ds, **cfg):
    """Build on ``ds``, cache, refresh into the first explore epoch, and return (method, loss terms) of one training
    loss on the whole training split (so that the batch holds every anchor and disagreement row)."""
    meth = cox_method(ds, **cfg)
    batch = cox_dm(ds).split_batch("train")
    meth.build_cache(batch, len(ds))
    epoch = meth.connect_epochs if meth.scenario == "semi" else meth.warmup_epochs
    for e in range(epoch + 1):
        meth.refresh(e)
    meth.current_epoch_override = epoch
    meth.train()
    torch.manual_seed(0)
    return meth, meth.loss(batch)


@pytest.mark.parametrize("case", ["none", "no_exploration", "no_connection", "no_warmup", "mmd"])
def test_each_ablation_builds_and_produces_its_loss_terms(case, monkeypatch, small_cox_sim, cox_method, cox_dm):
    monkeypatch.setattr(COXMethod, "current_epoch", property(lambda self: getattr(self, "current_epoch_override", 0)))
    scen = "unsup" if case in ("no_warmup", "mmd") else "semi"
    ds = small_cox_sim(scenario=scen, seed=0)
    cfg = {"scenario": scen, "connect_epochs": 0}
    if case in ("no_exploration", "no_connection", "no_warmup"):
        cfg["ablation"] = case
    if case == "mmd":
        cfg.update(warmup_selection="mmd", warmup_epochs=1)
    meth, out = _explore_terms(cox_method, cox_dm, ds, **cfg)
    terms = set(out.terms)
    assert torch.isfinite(out.loss)
    if case == "none":
        assert {"ce_labelled", "recon", "kl", "frac_D"} <= terms and float(out.terms["frac_D"]) > 0
        assert float(out.terms["kl"]) > 0
    elif case == "no_exploration":
        assert "kl" not in terms and "frac_D" not in terms
        assert {"ce_labelled", "recon", "ce_anchor"} <= terms  # the agreement pseudo-labels stay on
    elif case == "no_connection":
        assert len(meth.connections) == 0 and not meth.use_connection
        assert "recon" not in terms and {"ce_labelled", "kl"} <= terms
        b = cox_dm(ds).split_batch("test")
        meth.eval()
        comps = meth.components(b)
        assert torch.equal(comps["map:im1"], b["x"]["im1"])  # raw IM features, no mapping
    elif case == "no_warmup":
        assert meth.warmup_epochs == 0 and meth.phase(0) == "explore"
        assert "ce_labelled" not in terms  # unsupervised: no labelled pairs
        assert {"ce_anchor", "recon_emergent", "kl"} <= terms  # emergent anchors from epoch 0
    else:  # warmup_selection=mmd, evaluated in its explore epoch
        assert meth.warmup_selection == "mmd" and meth.phase(0) == "warmup" and meth.phase(1) == "explore"
        assert {"ce_anchor", "recon_emergent", "kl"} <= terms


# ------------------------------------------------------------------ the optional VIB prior term (beta)
def _closed_form_prior_kl(mu, logvar):
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    return torch.distributions.kl_divergence(q, p).sum(1).mean()


@pytest.mark.parametrize("beta", [0.5, 2.0])
def test_beta_adds_the_prior_kl_to_the_loss(beta, small_cox_sim, cox_method, cox_dm):
    ds = small_cox_sim(seed=0)
    meth = cox_method(ds, connection={"beta": beta})
    meth.train()
    g = torch.Generator().manual_seed(0)
    z_o = torch.randn(6, 16, generator=g)
    z_im = {m: torch.randn(6, 16, generator=g) for m in meth.im}
    torch.manual_seed(3)
    loss, terms = meth._recon(z_o, z_im)
    assert {"recon", "kl_prior"} <= set(terms)
    with torch.no_grad():
        want = 0.0
        for m in meth.im:
            mu, logvar = meth.connections[m].enc(z_im[m]).chunk(2, dim=1)
            want = want + _closed_form_prior_kl(mu, logvar.clamp(-10.0, 10.0))
    assert float(want) > 0
    assert float(terms["kl_prior"]) == pytest.approx(float(want), rel=1e-5)
    assert float(loss.detach() - terms["recon"]) == pytest.approx(beta * float(want), rel=1e-5)
    # and through the full loss (eval mode: the batch's own labelled pairs, deterministic v = mu)
    meth.eval()
    out = meth.loss(cox_dm(ds).split_batch("train"))
    rest = out.loss.detach() - out.terms["ce_labelled"] - out.terms["recon"]
    assert float(rest) == pytest.approx(beta * float(out.terms["kl_prior"]), rel=1e-4)


def test_no_prior_kl_unless_beta_positive(monkeypatch, small_cox_sim, cox_method, cox_dm):
    import mmib.methods.cox.method as cox_mod

    def boom(*a, **k):
        raise AssertionError("gaussian_kl_to_prior called with beta = 0")

    ds = small_cox_sim(seed=0)
    meth = cox_method(ds)  # default connection.beta = 0
    assert meth.beta == 0.0
    monkeypatch.setattr(cox_mod, "gaussian_kl_to_prior", boom)
    meth.eval()
    out = meth.loss(cox_dm(ds).split_batch("train"))
    assert "kl_prior" not in out.terms
    assert float(out.loss.detach()) == pytest.approx(float(out.terms["ce_labelled"] + out.terms["recon"]), rel=1e-6)
    meth_b = cox_method(ds, connection={"beta": 1.0})
    meth_b.eval()
    with pytest.raises(AssertionError, match="beta = 0"):  # the patch is live: beta > 0 does call it
        meth_b.loss(cox_dm(ds).split_batch("train"))




def test_cox_declares_its_connections_in_its_oom_state(small_cox_sim, cox_method):
    from mmib.methods.base import OOMState

    assert OOMState("x").connections is False  # the default for every other method
    ds = small_cox_sim(seed=0)
    for name in ("cox", "cox_erm"):  # COX and its baselines carry the heads and connections
        state = cox_method(ds, name=name).oom_state(0)
        assert state.connections is True and state.modality == "oom"
