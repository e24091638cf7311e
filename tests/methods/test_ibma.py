"""IBMA method: state initialisation (Alg. 1), per-epoch Q / centroid refresh, zero-gradient U, IB <= IBB, CLUB
swap, subsets and errors."""

import math

import pytest
import torch

from mmib.data.spec import DatasetSpec, ModalitySpec
from mmib.errors import MMIBError
from mmib.methods.registry import build_method
from mmib.objectives.ibma import class_means, soft_assign, update_q

SMALL = {"representation_dim": 16, "head_hidden": [], "fusion": {"heads": 2, "ffn": 32, "dropout": 0.0}}


def _spec(m=2):
    mods = tuple(ModalitySpec(f"v{i}", "vector", (4 + i,)) for i in range(m))
    return DatasetSpec("toy", mods, task="classification", n_classes=3)


def _batch(spec, n=30, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = {ms.name: torch.randn(n, ms.shape[0], generator=g) + y[:, None].float() for ms in spec.modalities}
    return {"x": x, "y": y}


def test_initialize_state_follows_algorithm_1():
    spec = _spec()
    m = build_method("ibma", spec, SMALL)
    b = _batch(spec)
    m.initialize_state(b)
    torch.testing.assert_close(m.prior, torch.full((3,), 1 / 3))
    torch.testing.assert_close(m.input_centroids_0, class_means(b["x"]["v0"], b["y"], 3))
    m.eval()
    with torch.no_grad():
        z = m.encode(b, m.mods)
    torch.testing.assert_close(m.feature_centroids_1, class_means(z["v1"], b["y"], 3))
    torch.testing.assert_close(m.q_0, torch.full((3, 3), 1 / 3))


def test_a_class_without_training_samples_is_an_error_not_an_infinite_loss():
    spec = _spec()
    m = build_method("ibma", spec, SMALL)
    b = _batch(spec)
    b["y"] = b["y"].clamp_max(1)  # class 2 never occurs
    with pytest.raises(MMIBError, match=r"class\(es\) \[2\] of 3 have no training samples"):
        m.initialize_state(b)


def test_first_epoch_ibb_has_no_gradient_and_u_is_logged():
    spec = _spec()
    m = build_method("ibma", spec, SMALL)
    b = _batch(spec)
    m.initialize_state(b)
    out = m.loss(b)
    assert {"ce_fuse", "ce_v0", "ibb_U_0_1", "ibb_V_0_1", "ibb_U_fuse", "ibb_V_fuse"} <= set(out.terms)
    assert abs(float(out.terms["ibb_V_0_1"]) + math.log(3)) < 1e-5  # uniform Q: V = -log C
    ibb = m.objective(
        [m.encode(b, m.mods)[k] for k in m.mods], m.fuse(b), [b["x"][k] for k in m.mods], b["y"],
        [m.feature_centroids_0, m.feature_centroids_1], m.fused_centroids, [m.input_centroids_0, m.input_centroids_1],
        m.prior, [m.q_0, m.q_1], m.q_fused)
    grads = torch.autograd.grad(ibb.loss, [p for p in m.encoders.parameters()], allow_unused=True)
    assert all(g is None or g.abs().max() < 1e-5 for g in grads)


def test_epoch_refresh_updates_q_then_centroids_and_ib_below_ibb():
    spec = _spec()
    m = build_method("ibma", spec, SMALL)
    b = _batch(spec)
    m.initialize_state(b)
    with torch.no_grad():
        o = m.forward_all(b, m.mods)
    old_f0 = m.feature_centroids_0.clone()
    a0 = soft_assign(o["z"]["v0"], old_f0)[0]
    stats = m.refresh([o["z"]["v0"], o["z"]["v1"]], o["fused"], [b["x"]["v0"], b["x"]["v1"]], b["y"])
    torch.testing.assert_close(m.q_0, update_q(a0, b["y"], 3))  # Q from the epoch's assignments (old centroids)
    torch.testing.assert_close(m.feature_centroids_0, class_means(o["z"]["v0"], b["y"], 3))
    for j in (0, 1):
        assert stats[f"IB_{j}"] <= stats[f"IBB_{j}"] + 1e-6
    assert stats["IB_fuse"] <= stats["IBB_fuse"] + 1e-6
    # after the refresh Q is informative: V is no longer the constant -log C and IBB has a gradient
    out = m.loss(b)
    assert abs(float(out.terms["ibb_V_0_1"]) + math.log(3)) > 1e-3


def _train(cfg, tmp_path, epochs=2):
    from mmib.data.dataset import MultimodalDataset
    from mmib.engine import train

    spec = _spec()
    b = _batch(spec, n=240)
    ds = MultimodalDataset(spec, {k: v.numpy() for k, v in b["x"].items()}, y=b["y"].numpy())
    c = {"method": {"name": "ibma", **SMALL, **cfg}, "data": {"name": "unused", "batch_size": 64},
         "encoder": {"vector": {"hidden": [16]}}, "seed": 0, "run_dir": str(tmp_path), "name": "ibma",
         "trainer": {"max_epochs": epochs, "enable_progress_bar": False, "accelerator": "cpu", "devices": 1,
                     "log_every_n_steps": 1}}
    return train(c, dataset=ds)


def test_engine_training_logs_plugin_quantities(tmp_path):
    r = _train({}, tmp_path)
    hist = r.method.ibma_history
    assert len(hist) == 2
    for h in hist:
        assert h["IB_0"] <= h["IBB_0"] + 1e-6 and h["IB_fuse"] <= h["IBB_fuse"] + 1e-6
    assert "train/plugin/IB_fuse" in r.metrics


def test_club_swap_trains(tmp_path):
    r = _train({"bound": "club", "club_hidden": 8}, tmp_path, epochs=1)
    assert r.method.bound == "club" and r.method.automatic_optimization is False
    assert any(k.startswith("train/club_U") for k in r.metrics)


def test_subset_three_modalities_and_errors():
    spec = _spec(3)
    m = build_method("ibma", spec, SMALL)
    b = _batch(spec)
    m.initialize_state(b)
    out = m.loss(b)
    assert {"ibb_V_0_2", "ibb_V_2_1"} <= set(out.terms)  # every ordered pair
    m.eval()
    with torch.no_grad():
        assert m.predict(b, ["v2"]).shape == (30, 3)
        assert m.components(b)["assign_fused"].shape == (30, 3)
    reg = DatasetSpec("reg", spec.modalities, task="regression")
    with pytest.raises(MMIBError, match="classification"):
        build_method("ibma", reg, SMALL)
    with pytest.raises(MMIBError, match="bound"):
        build_method("ibma", spec, {**SMALL, "bound": "vcl"})
    fresh = build_method("ibma", spec, SMALL)
    with pytest.raises(MMIBError, match="initialize_state"):
        fresh.loss(b)


def test_concat_fusion_is_linear_on_the_concatenated_representations_with_the_same_loss():
    """``fusion.kind: concat``: Z = W [Z^(1); Z^(2)] + b (no Transformer), a zero vector for a missing modality, and
    the same loss terms as the Transformer fusion."""
    spec = _spec()
    m = build_method("ibma", spec, {**SMALL, "fusion": {"kind": "concat"}})
    assert not any(isinstance(x, torch.nn.TransformerEncoderLayer) for x in m.modules())
    b = _batch(spec)
    m.initialize_state(b)
    m.eval()
    with torch.no_grad():
        z = m.encode(b, m.mods)
        lin = [x for x in m.fusion.modules() if isinstance(x, torch.nn.Linear)]
        assert len(lin) == 1 and lin[0].in_features == 32 and lin[0].out_features == 16
        want = torch.cat([z["v0"], z["v1"]], 1).double() @ lin[0].weight.double().T + lin[0].bias.double()
        torch.testing.assert_close(m.fuse(b).double(), want)
        only0 = {"x": {"v0": b["x"]["v0"]}, "y": b["y"]}
        want0 = torch.cat([z["v0"], torch.zeros_like(z["v1"])], 1).double() @ lin[0].weight.double().T + lin[0].bias.double()
        torch.testing.assert_close(m.fuse(only0, ["v0"]).double(), want0)
    m.train()
    ref = build_method("ibma", spec, SMALL)
    ref.initialize_state(b)
    out, out_ref = m.loss(b), ref.loss(b)
    assert set(out.terms) == set(out_ref.terms)
    out.loss.backward()
    assert lin[0].weight.grad is not None and float(lin[0].weight.grad.abs().sum()) > 0


def test_unknown_fusion_kind_is_an_error():
    with pytest.raises(MMIBError, match=r"method.fusion.kind must be one of transformer, concat"):
        build_method("ibma", _spec(), {**SMALL, "fusion": {"kind": "attention"}})
