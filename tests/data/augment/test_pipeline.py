"""mmib.data.augment.pipeline: the registry of names, the CoMM defaults, build_augmentation from a config list and
the per-modality ModalityAugmenter."""

import pytest
import torch

from mmib.data.augment import (
    AUGMENTATIONS,
    Compose,
    GaussianNoise,
    Identity,
    ModalityAugmenter,
    RandomApply,
    TimeDrop,
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


def test_build_augmentation_structure():
    assert all(cls.name == name for name, cls in AUGMENTATIONS.items())
    assert isinstance(build_augmentation("vector", None), Identity)
    assert isinstance(build_augmentation("vector", []), Identity)
    one = build_augmentation("vector", [{"name": "noise", "sigma": 0.2}])
    assert isinstance(one, GaussianNoise) and one.sigma == 0.2
    maybe = build_augmentation("signal", [{"name": "time_drop", "p": 0.25}])
    assert isinstance(maybe, RandomApply) and maybe.p == 0.25 and isinstance(maybe.aug, TimeDrop)
    seq = build_augmentation("signal", "default")
    assert isinstance(seq, Compose) and [type(a.aug) for a in seq.augs] == [GaussianNoise, TimeDrop]
    assert [a.p for a in seq.augs] == [0.5, 0.5]
    with pytest.raises(MMIBError, match="must be a list of"):
        build_augmentation("vector", "strong")
    with pytest.raises(MMIBError, match="unknown data kind 'audio'"):
        default_augmentation_config("audio")


def test_make_generator_and_augmenter_seed():
    a, b = make_generator(3), make_generator(3)
    assert torch.equal(torch.rand(5, generator=a), torch.rand(5, generator=b))
    ds = make_rus(n_samples=8, dim=32)
    x = ds.x
    o1 = ModalityAugmenter(ds.spec, None, seed=4)(x)
    o2 = ModalityAugmenter(ds.spec, None, seed=4)(x)
    o3 = ModalityAugmenter(ds.spec, None, seed=5)(x)
    assert all(torch.equal(o1[m], o2[m]) for m in o1) and not torch.equal(o1["x1"], o3["x1"])
    only = ModalityAugmenter(ds.spec, {"default": None}, seed=0)(x, modalities=["x2"])
    assert list(only) == ["x2"] and torch.equal(only["x2"], x["x2"])
    with pytest.raises(UnknownNameError, match="key of the augmentation config"):
        ModalityAugmenter(ds.spec, {"defaults": None})
