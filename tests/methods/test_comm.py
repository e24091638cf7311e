"""CoMM: structure (Z_i invariant to the other modalities, masks = dropped tokens, padding masks in training and
inference, any M), the loss wiring, ablations, and a training claim on the R/U/S generator (spec D.3)."""

import numpy as np
import pytest
import torch

from mmib.data.dataset import MultimodalDataset
from mmib.data.spec import DatasetSpec, ModalitySpec
from mmib.data.synthetic.rus import make_rus
from mmib.errors import MMIBError
from mmib.methods.registry import build_method

SMALL = {"embed_dim": 16, "vector_tokens": 4, "fusion": {"n_heads": 2, "dim_feedforward": 32},
         "head_hidden": 32, "projection_dim": 16}
ENC = {"vector": {"hidden": [32]}, "sequence": {"type": "gru", "hidden": 16}, "signal": {"channels": [8, 8]},
       "image": {"widths": [8, 8]}}


def _method(spec, **cfg):
    return build_method("comm", spec, {**SMALL, **cfg}, ENC)


def _rus(m=2, n=64):
    return make_rus(n_samples=n, n_modalities=m, dim=32)


def test_unimodal_embedding_is_invariant_to_other_modalities():
    ds = _rus(3)
    method = _method(ds.spec).eval()
    b = ds.get_batch(np.arange(32))
    b2 = {**b, "x": {**b["x"], "x2": torch.randn_like(b["x"]["x2"]), "x3": torch.randn_like(b["x"]["x3"])}}
    with torch.no_grad():
        z, z2 = method.embed(b), method.embed(b2)
        torch.testing.assert_close(z["x1"], z2["x1"], rtol=0, atol=0)
        assert not torch.allclose(z["x2"], z2["x2"])
        # the fused representation of {x1, x3} ignores x2 and equals the components' view
        f, f2 = method.fuse(b, ["x1", "x3"]), method.fuse(b2, ["x1", "x3"])
        assert not torch.allclose(f, f2)  # x3 changed
        b3 = {**b, "x": {**b["x"], "x2": torch.randn_like(b["x"]["x2"])}}
        torch.testing.assert_close(method.fuse(b, ["x1", "x3"]), method.fuse(b3, ["x1", "x3"]), rtol=0, atol=0)
        comps = method.components(b)
        assert set(comps) == {"Z", "Z_x1", "Z_x2", "Z_x3"}
        torch.testing.assert_close(comps["Z_x1"], z["x1"])
        torch.testing.assert_close(comps["Z"], method.fuse(b))


def _seq_dataset(n=24, t=10):
    spec = DatasetSpec("seqs", (ModalitySpec("s", "sequence", (t, 3)), ModalitySpec("v", "vector", (5,))),
                       task="classification", n_classes=2)
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, t + 1, n)
    x = rng.standard_normal((n, t, 3)).astype(np.float32)
    for i, length in enumerate(lengths):
        x[i, length:] = 0
    return MultimodalDataset(spec, {"s": x, "v": rng.standard_normal((n, 5)).astype(np.float32)},
                             y=rng.integers(0, 2, n), lengths={"s": lengths})


@pytest.mark.parametrize("enc", ["gru", "transformer"])
def test_padding_mask_is_used_in_training_and_inference(enc):
    ds = _seq_dataset()
    cfg = {**ENC, "sequence": {"type": enc, "hidden": 16} if enc == "gru" else
           {"type": "transformer", "d_model": 16, "n_heads": 2, "n_layers": 1, "dim_feedforward": 16, "dropout": 0.0}}
    method = build_method("comm", ds.spec, {**SMALL, "augment_seed": 3}, cfg)
    b = ds.get_batch(np.arange(24))
    garbage = b["x"]["s"].clone()
    pad = torch.arange(10)[None, :] >= b["lengths"]["s"][:, None]
    garbage[pad] = 1e3 * torch.randn(int(pad.sum()), 3)
    bg = {**b, "x": {**b["x"], "s": garbage}}
    method.eval()
    with torch.no_grad():
        torch.testing.assert_close(method.fuse(b), method.fuse(bg), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(method.embed(b)["s"], method.embed(bg)["s"], rtol=1e-5, atol=1e-5)
    method.train()  # the same augmentation draws → the same loss whatever the padded values hold
    state = method.augmenter.state()
    l1 = method.loss(b).loss
    method.augmenter.load_state(state)
    l2 = method.loss(bg).loss
    assert float(l1) == pytest.approx(float(l2), rel=1e-5)


def test_loss_terms_ablations_and_determinism():
    ds = _rus(3)
    b = ds.get_batch(np.arange(32))
    for terms, keys in [("all", {"L_full", "L_x1", "L_x2", "L_x3"}), ("full", {"L_full"}),
                        ("unimodal", {"L_x1", "L_x2", "L_x3"})]:
        method = _method(ds.spec, objective={"terms": terms}, augment_seed=1)
        out = method.loss(b)
        assert set(out.terms) == keys
        want = sum(float(out.terms[k]) for k in keys)
        assert float(out.loss) == pytest.approx(want, rel=1e-5)
    a = _method(ds.spec, augment_seed=7)
    torch.manual_seed(0)
    c = _method(ds.spec, augment_seed=7)
    c.load_state_dict(a.state_dict())
    assert float(a.loss(b).loss) == pytest.approx(float(c.loss(b).loss), rel=1e-6)  # seeded views


def test_clean_unimodal_views_variant_and_errors():
    ds = _rus(2)
    b = ds.get_batch(np.arange(16))
    out = _method(ds.spec, unimodal_views="clean").loss(b)
    assert set(out.terms) == {"L_full", "L_x1", "L_x2"}
    with pytest.raises(MMIBError, match="unimodal_views"):
        _method(ds.spec, unimodal_views="raw")
    one = DatasetSpec("one", (ModalitySpec("a", "vector", (4,)),))
    with pytest.raises(MMIBError, match="at least 2 modalities"):
        build_method("comm", one, SMALL, ENC)


def test_projection_head_has_the_authors_batchnorm():
    """pl_modules/comm.py:_build_mlp: Linear-BN-ReLU-Linear-BN-ReLU-Linear; head_norm: none drops the BN."""
    ds = _rus(2)
    kinds = [type(m).__name__ for m in _method(ds.spec).head]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Linear"]
    plain = _method(ds.spec, head_norm="none")
    assert [type(m).__name__ for m in plain.head] == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    # training-mode BN standardizes each hidden unit over the batch: zero mean, unit variance after the first BN
    m = _method(ds.spec).train()
    h = m.head[1](m.head[0](torch.randn(64, 16) * 5 + 3))
    torch.testing.assert_close(h.mean(0), torch.zeros(h.shape[1]), atol=1e-5, rtol=0)
    torch.testing.assert_close(h.var(0, unbiased=False), torch.ones(h.shape[1]), atol=1e-3, rtol=0)
    with pytest.raises(MMIBError, match="head_norm"):
        _method(ds.spec, head_norm="layer_norm")


def test_image_and_signal_tokens():
    spec = DatasetSpec("mix", (ModalitySpec("img", "image", (3, 16, 16)), ModalitySpec("sig", "signal", (2, 32))))
    method = build_method("comm", spec, SMALL, ENC)
    b = {"x": {"img": torch.rand(6, 3, 16, 16), "sig": torch.randn(6, 2, 32)}}
    out = method.loss(b)
    assert torch.isfinite(out.loss)
    assert method.fuse(b).shape == (6, 16)


@pytest.mark.slow
def test_comm_fused_representation_decodes_synergy_above_random_init():
    """D.3.1/D.3.8 on the R/U/S generator: a CE-trained linear probe on CoMM's fused Z predicts the XOR label above
    chance and above a randomly initialised CoMM."""
    from mmib.data.datamodule import MultimodalDataModule
    from mmib.eval.probe import ProbeConfig, train_probe

    torch.manual_seed(0)
    ds = make_rus(n_samples=3000)
    dm = MultimodalDataModule(ds, batch_size=256, seed=0)
    cfg = {"embed_dim": 64, "vector_tokens": 8, "fusion": {"n_heads": 4, "dim_feedforward": 128}, "head_hidden": 256,
           "projection_dim": 128, "augment_seed": 0}
    enc = {"vector": {"hidden": [128, 128]}}
    method = build_method("comm", ds.spec, cfg, enc)
    random_init = build_method("comm", ds.spec, cfg, enc)
    random_init.load_state_dict(method.state_dict())
    opt = torch.optim.AdamW(method.parameters(), lr=1e-3, weight_decay=1e-4)
    train_idx = dm.indices["train"]
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        perm = train_idx[torch.randperm(len(train_idx), generator=g).numpy()]
        for s in range(0, len(perm) - 255, 256):
            loss = method.loss(ds.get_batch(perm[s : s + 256])).loss
            opt.zero_grad()
            loss.backward()
            opt.step()

    def probe(m):
        m.eval()
        with torch.no_grad():
            f = {k: m.fuse(dm.split_batch(k)).numpy() for k in ("train", "val", "test")}
        y = {k: ds.latents["synergy"][dm.indices[k]].numpy() for k in f}
        return train_probe(f["train"], y["train"], f["val"], y["val"], f["test"], y["test"], n_classes=2,
                           config=ProbeConfig(kind="linear"))["balanced_accuracy"]

    trained, control = probe(method), probe(random_init)
    assert trained >= 0.65
    assert trained > control + 0.1
