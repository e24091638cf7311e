"""FactorCL methods: factor structure (ZS_1, ZU_1 invariant to x2), the alternating CLUB-critic updates (φ changes
only in its own step, k steps per main step), conditioning, and bad input (spec D.2.5, A.4–A.6)."""

import numpy as np
import pytest
import torch

from mmib.data.datamodule import MultimodalDataModule
from mmib.data.synthetic.factorcl_sim import make_factorcl_sim
from mmib.data.synthetic.rus import make_rus
from mmib.errors import MMIBError
from mmib.methods.registry import build_method

CFG = {"representation_dim": 16, "head_dim": 8, "head_hidden": [8], "critic_hidden": [16], "augment_seed": 0,
       "optim": {"lr": 1e-3, "club_lr": 1e-3}}
ENC = {"vector": {"hidden": [32]}}


def _ds(n=96):
    return make_factorcl_sim(n_samples=n, dim=24, shared_dim=4, unique_dim=3, label_dim=4)


@pytest.mark.parametrize("name", ["factorcl_sup", "factorcl_ssl"])
def test_factors_of_x1_are_invariant_to_x2(name):
    ds = _ds()
    m = build_method(name, ds.spec, CFG, ENC).eval()
    b = ds.get_batch(np.arange(16))
    b2 = {**b, "x": {**b["x"], "x2": torch.randn_like(b["x"]["x2"])}}
    with torch.no_grad():
        c, c2 = m.components(b), m.components(b2)
        for k in ("ZS_x1", "ZU_x1", "E_x1"):
            torch.testing.assert_close(c[k], c2[k], rtol=0, atol=0)
        assert not torch.allclose(c["ZS_x2"], c2["ZS_x2"])
        assert c["ZS_x1"].shape == (16, 2 * 8) and c["ZU_x1"].shape == (16, 3 * 8)
        rep = m.embed(b)
        torch.testing.assert_close(rep["x1"], torch.cat([c["ZS_x1"], c["ZU_x1"]], 1))
        assert m.embed(b, space="embedding")["x1"].shape == (16, 8)
    enc = build_method(name, ds.spec, {**CFG, "representation": "encoder"}, ENC).eval()
    assert enc.embed(b)["x1"].shape == (16, 16)


def _params(module):
    return [p.detach().clone() for p in module]


def _changed(before, after):
    return any(not torch.equal(a, b) for a, b in zip(before, after))


@pytest.mark.parametrize("name", ["factorcl_sup", "factorcl_ssl"])
def test_club_critics_change_only_in_their_own_step(name):
    ds = _ds()
    m = build_method(name, ds.spec, {**CFG, "club_batch": "same"}, ENC)
    opt_main, opt_club = m.configure_optimizers()
    phi = m.objective.club_parameters()
    club_ids = {id(p) for p in phi}
    theta = [p for p in m.parameters() if id(p) not in club_ids]
    b = ds.get_batch(np.arange(32))
    phi0, theta0 = _params(phi), _params(theta)
    out = m.loss(b)
    opt_main.zero_grad()
    out.loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in phi)  # the CLUB terms use φ ...
    opt_main.step()  # ... but the main step does not move it
    assert not _changed(phi0, _params(phi)) and _changed(theta0, _params(theta))
    theta1 = _params(theta)
    inputs = m.critic_inputs(b, ("club", "club_cond"))
    loss = m.objective.club_critic_loss({k: (a.detach(), c.detach()) for k, (a, c) in inputs.items()})
    opt_club.zero_grad()
    loss.loss.backward()
    opt_club.step()
    assert _changed(phi0, _params(phi)) and not _changed(theta1, _params(theta))


def test_k_inner_club_steps_per_main_step_in_lightning(tmp_path):
    import lightning as L

    ds = _ds(160)
    dm = MultimodalDataModule(ds, batch_size=32, seed=0)
    m = build_method("factorcl_sup", ds.spec, {**CFG, "club_steps": 3}, ENC)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, default_root_dir=str(tmp_path))
    phi0 = _params(m.objective.club_parameters())
    trainer.fit(m, datamodule=dm)
    assert m._main_updates == len(dm.indices["train"]) // 32 > 0
    assert m._club_updates == 3 * m._main_updates
    assert _changed(phi0, _params(m.objective.club_parameters()))
    opt_main, opt_club = trainer.optimizers
    assert opt_club.state[m.objective.club_parameters()[0]]["step"] == 3 * m._main_updates
    enc_p = next(m.encoders.parameters())
    assert opt_main.state[enc_p]["step"] == m._main_updates


def test_conditioning_inputs_sup_and_ssl():
    ds = _ds()
    b = ds.get_batch(np.arange(8))
    sup = build_method("factorcl_sup", ds.spec, CFG, ENC)
    inp = sup.critic_inputs(b)
    y1h = torch.nn.functional.one_hot(b["y"], 2).float()
    torch.testing.assert_close(inp["nce_self1"][1], y1h)
    torch.testing.assert_close(inp["nce_cond"][0][:, -2:], y1h)
    torch.testing.assert_close(inp["nce_cond"][1][:, -2:], y1h)
    first = build_method("factorcl_sup", ds.spec, {**CFG, "condition_side": "first"}, ENC)
    assert first.critic_inputs(b)["club_cond"][1].shape == (8, 8)
    ssl = build_method("factorcl_ssl", ds.spec, CFG, ENC)
    inp = ssl.critic_inputs(b)
    assert inp["nce_cond"][0].shape == (8, 16) and inp["nce_self2"][1].shape == (8, 8)
    ind = build_method("factorcl_ssl", ds.spec, {**CFG, "unique_augment": False}, ENC)
    assert ind.unique is None and ssl.unique is not None


def test_unique_augmentation_keeps_what_x2_shares_with_x1():
    ds = make_rus(n_samples=256, dim=32, noise=0.0)
    m = build_method("factorcl_ssl", ds.spec, {**CFG, "augment": {"default": [{"name": "noise", "sigma": 1.0}]}}, ENC)
    b = ds.get_batch(np.arange(256))
    x1, x2 = b["x"]["x1"], b["x"]["x2"]
    views = m.augmented_views(b)
    delta = views["x2"] - x2
    basis = m.unique.shared_basis(x2, x1)
    assert basis.shape[1] >= 1
    assert float((delta @ basis).abs().max()) < 1e-4 * float(delta.abs().max())  # no change in the shared part
    assert float(delta.norm()) > 0
    assert m.unique.protect == "cv"  # the method's default rule


def test_defaults_match_factorcls_code_and_the_cv_rule_reads_its_config():
    """Critics: FactorCL's ``mlp(a+b, 512, 1, layers=1)`` has two hidden layers of 512; ``unique_augment`` options
    reach the augmentation."""
    from omegaconf import OmegaConf

    from mmib.config import CONF_DIR

    for name in ("factorcl_sup", "factorcl_ssl"):
        assert list(OmegaConf.load(CONF_DIR / "method" / f"{name}.yaml").critic_hidden) == [512, 512]
    ssl = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "method" / "factorcl_ssl.yaml").unique_augment)
    assert ssl["protect"] == "cv"
    ds = _ds()
    m = build_method("factorcl_ssl", ds.spec, {**CFG, "unique_augment": {"protect": "cv", "permutations": 3,
                                                                         "refresh_every": 4}}, ENC)
    assert (m.unique.permutations, m.unique.refresh_every) == (3, 4)
    # the keys the YAML leaves out reach it too; null gives the typed defaults (refresh_every 10, not the class's 1)
    m = build_method("factorcl_ssl", ds.spec, {**CFG, "unique_augment": {"folds": 3, "min_r2": 0.1}}, ENC)
    assert (m.unique.folds, m.unique.min_r2, m.unique.refresh_every) == (3, 0.1, 10)
    assert build_method("factorcl_ssl", ds.spec, {**CFG, "unique_augment": None}, ENC).unique.refresh_every == 10
    with pytest.raises(MMIBError, match=r"method.unique_augment must be a mapping or one of False or null, got True"):
        build_method("factorcl_ssl", ds.spec, {**CFG, "unique_augment": True}, ENC)
    linears = [x for x in m.objective.critics["nce"].modules() if isinstance(x, torch.nn.Linear)]
    assert len(linears) == 2  # CFG's critic_hidden [16]: one hidden layer (the first Linear is split in pairwise)


def test_bad_input():
    ds = _ds()
    three = make_rus(n_samples=32, n_modalities=3, dim=32)
    with pytest.raises(MMIBError, match="exactly 2"):
        build_method("factorcl_ssl", three.spec, CFG, ENC)
    with pytest.raises(MMIBError, match="club_steps"):
        build_method("factorcl_ssl", ds.spec, {**CFG, "club_steps": -1}, ENC)
    with pytest.raises(MMIBError, match="condition_side"):
        build_method("factorcl_sup", ds.spec, {**CFG, "condition_side": "second"}, ENC)
    with pytest.raises(MMIBError, match="representation"):
        build_method("factorcl_sup", ds.spec, {**CFG, "representation": "raw"}, ENC)
    m = build_method("factorcl_sup", ds.spec, CFG, ENC)
    b = ds.get_batch(np.arange(8))
    del b["y"]
    with pytest.raises(MMIBError, match="no labels"):
        m.loss(b)
