"""Cross, Cross+Self and SupCon: the loss each one computes (against the objectives applied by hand to the same
augmented views), any M >= 2, spaces, errors."""

import numpy as np
import pytest
import torch

from mmib.data.synthetic.rus import make_rus
from mmib.errors import MMIBError
from mmib.methods.registry import build_method, method_names
from mmib.objectives.clip import PairwiseCLIPLoss
from mmib.objectives.ntxent import nt_xent
from mmib.objectives.supcon import supcon_loss

CFG = {"representation_dim": 16, "embed_dim": 8, "augment_seed": 5}
SELF = {**CFG, "self_head_hidden": 16, "self_embed_dim": 8}  # cross_self's own options (the others refuse them)
ENC = {"vector": {"hidden": [32]}}


def test_names_are_registered():
    assert {"cross", "cross_self", "supcon", "comm", "factorcl_sup", "factorcl_ssl"} <= set(method_names())


@pytest.mark.parametrize("m_count", [2, 3])
def test_cross_is_pairwise_infonce_of_linear_projections(m_count):
    ds = make_rus(n_samples=64, n_modalities=m_count, dim=32)
    m = build_method("cross", ds.spec, CFG, ENC)
    assert all(len([x for x in h if isinstance(x, torch.nn.Linear)]) == 1 for h in m.heads.values())
    b = ds.get_batch(np.arange(16))
    state = m.augmenter.state()
    out = m.loss(b)
    m.augmenter.load_state(state)
    x = m.augmenter(b["x"])
    z = {k: m.heads[k](m.encoders[k](x[k])) for k in ds.spec.modality_names}
    want = PairwiseCLIPLoss(0.1)(z).loss
    assert float(out.loss) == pytest.approx(float(want), rel=1e-6)
    assert len([k for k in out.terms if k.startswith("clip_")]) == m_count * (m_count - 1) // 2


def test_cross_self_adds_per_modality_simclr():
    ds = make_rus(n_samples=64, dim=32)
    m = build_method("cross_self", ds.spec, {**SELF, "self_weight": 0.5}, ENC)
    b = ds.get_batch(np.arange(16))
    state = m.augmenter.state()
    out = m.loss(b)
    m.augmenter.load_state(state)
    x0 = m.augmenter(b["x"])
    cross = PairwiseCLIPLoss(0.1)({k: m.heads[k](m.encoders[k](x0[k])) for k in ("x1", "x2")}).loss
    xa, xb = m.augmenter(b["x"]), m.augmenter(b["x"])
    self_terms = [nt_xent(m.self_heads[k](m.encoders[k](xa[k])), m.self_heads[k](m.encoders[k](xb[k])), 10.0)
                  for k in ("x1", "x2")]
    assert float(out.loss) == pytest.approx(float(cross + 0.5 * sum(self_terms)), rel=1e-5)
    assert {"cross", "self_x1", "self_x2"} <= set(out.terms)


def test_supcon_method_uses_labels_as_positives():
    ds = make_rus(n_samples=64, dim=32, target="redundant")
    m = build_method("supcon", ds.spec, {**CFG, "n_views": 2, "augment": {"default": None}}, ENC)
    b = ds.get_batch(np.arange(16))
    out = m.loss(b)
    views = [m.heads[k](m.encoders[k](b["x"][k])) for _ in range(2) for k in ("x1", "x2")]
    want = supcon_loss(views, b["y"], 1 / 0.07, 0.07)
    assert float(out.loss) == pytest.approx(float(want), rel=1e-5)
    nob = {k: v for k, v in b.items() if k != "y"}
    with pytest.raises(MMIBError, match="no labels"):
        m.loss(nob)


def test_spaces_and_missing_modalities():
    ds = make_rus(n_samples=64, dim=32)
    m = build_method("cross", ds.spec, CFG, ENC)
    b = ds.get_batch(np.arange(16))
    assert m.embed(b)["x1"].shape == (16, 16)
    assert m.embed(b, space="embedding")["x1"].shape == (16, 8)
    with pytest.raises(MMIBError, match="space"):
        m.embed(b, space="latent")
    b["mask"]["x2"][:3] = False
    out = m.loss(b)  # incomplete rows are dropped
    assert torch.isfinite(out.loss)
    b["mask"]["x2"][:] = False
    with pytest.raises(MMIBError, match="fewer than 2"):
        m.loss(b)
    with pytest.raises(MMIBError, match="self_weight"):
        build_method("cross_self", ds.spec, {**SELF, "self_weight": -1}, ENC)


def test_checkpoint_keeps_each_ranks_augmenter_generator(monkeypatch):
    # a 2-process run: every rank dumps the checkpoint (rank 0 writes it); on resume rank 1 must get its own
    # augmenter state back, not rank 0's (simulated process group: rank 1 of 2)
    ds = make_rus(n_samples=64, dim=32)
    m0 = build_method("cross_self", ds.spec, {**SELF, "augment_seed": 1}, ENC)
    m1 = build_method("cross_self", ds.spec, {**SELF, "augment_seed": 2}, ENC)
    s0, s1 = m0.augmenter.state(), m1.augmenter.state()
    dist = torch.distributed
    monkeypatch.setattr(dist, "is_available", lambda: True)
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda *a: 2)
    monkeypatch.setattr(dist, "get_rank", lambda *a: 1)

    def all_gather_object(out, obj):
        out[:] = [s0, obj]

    monkeypatch.setattr(dist, "all_gather_object", all_gather_object)
    ckpt: dict = {}
    m1.on_save_checkpoint(ckpt)
    assert len(ckpt["mmib_augment_rng_per_rank"]) == 2
    fresh = build_method("cross_self", ds.spec, {**SELF, "augment_seed": 9}, ENC)
    fresh.on_load_checkpoint(ckpt)
    b = ds.get_batch(np.arange(8))
    m1.augmenter.load_state(s1)
    want = m1.augmenter(b["x"])
    got = fresh.augmenter(b["x"])
    assert all(torch.equal(got[k], want[k]) for k in want)
    m0.augmenter.load_state(s0)
    other = m0.augmenter(b["x"])
    assert not all(torch.equal(other[k], want[k]) for k in want)  # rank 0's stream differs


def test_cross_learned_temperature_takes_a_floor_below_1e3_and_is_reported(tmp_path):
    """Every objective with a temperature takes one below 1e-3 (Cross learns it: its floor is configurable), and a
    learned temperature is reported in the run's final metrics by the Method base (one mechanism for all)."""
    from mmib.config import compose_config
    from mmib.engine import train

    res = train(compose_config(["method=cross", "data=sim_align", "trainer.max_epochs=1", f"run_dir={tmp_path}",
                                "trainer.enable_progress_bar=false", "method.temperature=5e-4",
                                "method.learn_temperature=true", "method.min_temperature=1e-5"]))
    t = res.method.cross_objective.temperature
    assert t.learnable and t.min_temperature == pytest.approx(1e-5)
    assert res.metrics["initial_temperature"] == pytest.approx(5e-4, rel=1e-6)
    assert res.metrics["final_temperature"] == pytest.approx(t.value, rel=1e-6)
    assert res.metrics["final_temperature"] >= 1e-5
