"""Augmentations: seeded, applied with a probability, shapes and padding kept, each op doing what it says."""

import math

import pytest
import torch

from mmib.data.augment import (
    Crop,
    GaussianNoise,
    Mixup,
    ModalityAugmenter,
    Permute,
    RandomApply,
    TimeDrop,
    UniqueAugmentation,
    build_augmentation,
    default_augmentation_config,
    make_generator,
)
from mmib.data.synthetic.rus import make_rus
from mmib.errors import MMIBError, UnknownNameError


@pytest.mark.parametrize("kind,shape", [("vector", (8, 5)), ("sequence", (8, 12, 3)), ("signal", (8, 3, 12)),
                                        ("image", (8, 3, 16, 16))])
def test_default_pipelines_are_seeded_and_keep_shapes(kind, shape):
    x = torch.rand(shape)
    aug = build_augmentation(kind, "default")
    a, b = aug(x, make_generator(1)), aug(x, make_generator(1))
    c = aug(x, make_generator(2))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert torch.isfinite(a).all()
    assert default_augmentation_config(kind)


def test_random_apply_probability():
    x = torch.zeros(2000, 4)
    out = RandomApply(GaussianNoise("vector", 1.0), p=0.3)(x, make_generator(0))
    frac = float((out.abs().sum(1) > 0).float().mean())
    assert frac == pytest.approx(0.3, abs=0.04)
    assert torch.equal(RandomApply(GaussianNoise("vector", 1.0), p=0.0)(x, make_generator(0)), x)


def test_time_drop_fraction_and_padding():
    x = torch.ones(500, 20, 2)
    lengths = torch.full((500,), 15)
    out = TimeDrop("sequence", max_fraction=0.8)(x, make_generator(0), lengths)
    dropped = (out[:, :15, 0] == 0).float().mean(1)
    assert float(dropped.max()) <= 0.8 and float(dropped.mean()) == pytest.approx(0.4, abs=0.05)
    assert float(out[:, 15:].abs().sum()) == 0.0  # padding stays zero


def test_crop_full_window_is_identity_and_crop_resamples():
    x = torch.randn(4, 3, 30)
    torch.testing.assert_close(Crop("signal", 1.0, 1.0)(x, make_generator(0)), x)
    ramp = torch.arange(40.0).repeat(5, 1)[:, None, :]  # (N, 1, T)
    out = Crop("signal", 0.25, 0.25)(ramp, make_generator(0))
    span = out[:, 0, -1] - out[:, 0, 0]
    assert torch.all(span < 11) and torch.all(torch.diff(out[:, 0], dim=1) >= -1e-6)  # a stretched window


def test_permute_is_a_permutation_of_time_steps():
    x = torch.arange(24.0).reshape(1, 24, 1).repeat(6, 1, 1)
    lengths = torch.tensor([24, 20, 16, 24, 12, 8])
    out = Permute("sequence", 4)(x, make_generator(3), lengths)
    for i, n in enumerate(lengths.tolist()):
        assert sorted(out[i, :n, 0].tolist()) == list(range(n))
        assert out[i, n:, 0].tolist() == list(range(n, 24))
    assert not torch.equal(out, x)


def test_mixup_is_convex_with_a_dominant_sample():
    x = torch.randn(50, 6)
    out = Mixup("vector", lam_min=0.7)(x, make_generator(0))
    assert float((out - x).norm(dim=1).max()) <= 0.3 * float((x[:, None] - x[None]).norm(dim=2).max()) + 1e-5


def test_image_ops_stay_in_range():
    x = torch.rand(4, 3, 16, 16)
    for item in ({"name": "color_jitter"}, {"name": "grayscale"}, {"name": "gaussian_blur"},
                 {"name": "resized_crop"}, {"name": "hflip"}):
        out = build_augmentation("image", [item])(x, make_generator(0))
        assert out.shape == x.shape and float(out.min()) >= -1e-5 and float(out.max()) <= 1 + 1e-5
    gray = build_augmentation("image", [{"name": "grayscale"}])(x, make_generator(0))
    assert torch.allclose(gray[:, 0], gray[:, 1])
    torch.testing.assert_close(build_augmentation("image", [{"name": "hflip"}])(x), x.flip(-1))


def test_unique_augmentation_protect_indices_and_auto():
    ds = make_rus(n_samples=200, dim=32, noise=0.0)
    x1, x2 = ds.x["x1"], ds.x["x2"]
    ua = UniqueAugmentation(GaussianNoise("vector", 1.0), protect=[0, 3])
    out = ua(x2, x1, make_generator(0))
    assert torch.equal(out[:, [0, 3]], x2[:, [0, 3]]) and not torch.equal(out, x2)
    auto = UniqueAugmentation(GaussianNoise("vector", 1.0), protect="auto")
    basis = auto.shared_basis(x2, x1)
    delta = auto(x2, x1, make_generator(0)) - x2
    assert float((delta @ basis).abs().max()) < 1e-3
    # the redundant code is what x2 shares with x1: its direction lies in the protected basis
    none = UniqueAugmentation(GaussianNoise("vector", 1.0), protect=None)
    assert torch.equal(none(x2, x1, make_generator(0)), GaussianNoise("vector", 1.0)(x2, make_generator(0)))


def test_modality_augmenter_and_errors():
    ds = make_rus(n_samples=16, dim=32)
    aug = ModalityAugmenter(ds.spec, {"default": None, "modalities": {"x2": [{"name": "noise", "sigma": 0.5}]}}, 0)
    out = aug(ds.x)
    assert torch.equal(out["x1"], ds.x["x1"]) and not torch.equal(out["x2"], ds.x["x2"])
    st = aug.state()
    a = aug(ds.x)["x2"]
    aug.load_state(st)
    assert torch.equal(aug(ds.x)["x2"], a)
    with pytest.raises(UnknownNameError, match="augmentation"):
        build_augmentation("vector", [{"name": "rotate"}])
    with pytest.raises(MMIBError, match="does not apply"):
        build_augmentation("vector", [{"name": "time_drop"}])
    with pytest.raises(MMIBError, match="bad parameters"):
        build_augmentation("vector", [{"name": "noise", "std": 1}])
    with pytest.raises(MMIBError, match="probability"):
        build_augmentation("vector", [{"name": "noise", "p": 2}])
    with pytest.raises(MMIBError, match="max_fraction"):
        TimeDrop("signal", max_fraction=1.0)
    with pytest.raises(UnknownNameError, match="modality"):
        ModalityAugmenter(ds.spec, {"modalities": {"x9": None}})


def _shared_pairs(seed: int, k: int, n: int = 256, shape1=(32,), shape2=(32,), scale: float = 1.0):
    """X1, X2 with a shared latent subspace of rank k (k = 0: independent), Gaussian noise of unit variance."""
    g = torch.Generator().manual_seed(seed)
    d1, d2 = math.prod(shape1), math.prod(shape2)
    s = torch.randn(n, max(k, 1), generator=g) * (1.0 if k else 0.0)
    a1 = torch.randn(max(k, 1), d1, generator=g) * scale
    a2 = torch.randn(max(k, 1), d2, generator=g) * scale
    x1 = torch.randn(n, d1, generator=g) + s @ a1
    x2 = torch.randn(n, d2, generator=g) + s @ a2
    return x1.reshape(n, *shape1), x2.reshape(n, *shape2)


@pytest.mark.parametrize("shapes", [((32,), (32,)), ((4, 64), (8, 64))], ids=["vectors", "signals_dim_gt_batch"])
def test_unique_augmentation_cv_rank_independent_and_shared(shapes):
    """protect='cv': rank <= 1 on independent modalities and = k on a shared rank-k subspace, in >= 9 of 10 draws
    (the signals are flattened to 256 / 512 features, the 512 above the batch of 256)."""
    ua = UniqueAugmentation(GaussianNoise("vector", 1.0), protect="cv", permutations=9)
    scale = 1.0 if shapes[0] == (32,) else 0.25
    indep = [ua.cv_shared_basis(*reversed(_shared_pairs(s, 0, shape1=shapes[0], shape2=shapes[1])))[1]["rank"]
             for s in range(10)]
    assert sum(r <= 1 for r in indep) >= 9, indep
    shared = [ua.cv_shared_basis(*reversed(_shared_pairs(s, 3, shape1=shapes[0], shape2=shapes[1],
                                                         scale=scale)))[1]["rank"] for s in range(10)]
    assert sum(r == 3 for r in shared) >= 9, shared
    # the earlier in-sample rule protects about half the rank of independent vectors
    if shapes[0] == (32,):
        auto = UniqueAugmentation(GaussianNoise("vector", 1.0), protect="auto")
        assert auto.shared_basis(*reversed(_shared_pairs(0, 0))).shape[1] >= 8


def test_unique_augmentation_cv_keeps_the_shared_subspace():
    x1, x2 = _shared_pairs(0, 2, shape1=(16,), shape2=(4, 8))
    ua = UniqueAugmentation(GaussianNoise("signal", 1.0), protect="cv", permutations=5, refresh_every=3)
    basis = ua.shared_basis(x2, x1)
    assert basis.shape == (32, 2)
    torch.testing.assert_close(basis.T @ basis, torch.eye(2), atol=1e-5, rtol=0)
    out = ua(x2, x1, make_generator(0))
    delta = (out - x2).reshape(x2.shape[0], -1)
    assert out.shape == x2.shape and float(delta.abs().max()) > 0.1
    assert float((delta @ basis).abs().max()) < 1e-4  # no perturbation inside the protected subspace
    with pytest.raises(MMIBError, match="protect must be"):
        UniqueAugmentation(GaussianNoise("vector", 1.0), protect="energy")
