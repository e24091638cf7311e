"""mmib.methods.cox.perceptors: the frozen perceptors of the IM modalities (identity, seeded random linear
map, a pretrained method) and the pretrained perceptor's encoder settings."""

from __future__ import annotations

import math

import torch

from mmib.methods.registry import build_method


def test_pretrained_perceptor_ignores_the_oom_modalitys_encoder_settings(small_cox_sim):
    # per-modality encoder settings may name the OOM modality (its own encoder); the IM perceptor is built on the
    # IM modalities alone and must not reject them as unknown
    ds = small_cox_sim(seed=0)
    pc = {"type": "pretrain", "dim": 16, "epochs": 1, "method": {"name": "clip", "representation_dim": 8,
                                                                "embed_dim": 8, "head_layers": 1}}
    enc = {"vector": {"type": "mlp", "hidden": [16]}, "modalities": {"oom": {"hidden": [12]}}}
    base = {"name": "cox", "head_fit": {"steps": 10, "lr": 0.05}, "centroid_steps": 5, "mmd_steps": 5,
            "perceptor": pc, "connect_epochs": 0}
    meth = build_method("cox", ds.spec, base, enc)
    assert set(meth.perceptor_model.spec.modality_names) == set(meth.im) == {"im1", "im2"}


def test_frozen_perceptors_identity_and_seeded_random_linear():
    from mmib.methods.cox.perceptors import FrozenPerceptor

    x = torch.randn(4, 2, 3)
    ident = FrozenPerceptor("identity", 6, 6)
    assert torch.equal(ident(x), x.reshape(4, 6))
    p = FrozenPerceptor("random_linear", 6, 3, seed=7)
    w = torch.randn(3, 6, generator=torch.Generator().manual_seed(7)) / math.sqrt(6)
    torch.testing.assert_close(p(x), x.reshape(4, 6) @ w.T)
    assert torch.equal(FrozenPerceptor("random_linear", 6, 3, seed=7).weight, p.weight)
    assert not torch.equal(FrozenPerceptor("random_linear", 6, 3, seed=8).weight, p.weight)
    assert list(p.parameters()) == [] and "weight" in dict(p.named_buffers())  # nothing to train
    assert p.train().training is False and p.train(True).training is False  # always in eval mode
