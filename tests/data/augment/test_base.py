"""mmib.data.augment.base: the base class's kind checks and the composition of augmentations (RandomApply, Compose,
Identity)."""

import pytest
import torch

from mmib.data.augment import Compose, GaussianNoise, Identity, RandomApply, TimeDrop, make_generator
from mmib.errors import MMIBError


def test_random_apply_probability():
    x = torch.zeros(2000, 4)
    out = RandomApply(GaussianNoise("vector", 1.0), p=0.3)(x, make_generator(0))
    frac = float((out.abs().sum(1) > 0).float().mean())
    assert frac == pytest.approx(0.3, abs=0.04)
    assert torch.equal(RandomApply(GaussianNoise("vector", 1.0), p=0.0)(x, make_generator(0)), x)


def test_random_apply_draws_its_mask_first_then_the_augmentation():
    """p = 1 gives exactly the augmentation's output with the generator advanced by the n mask draws (the draws
    stay aligned whatever the mask is)."""
    x = torch.randn(6, 4)
    out = RandomApply(GaussianNoise("vector", 1.0), p=1.0)(x, make_generator(5))
    g = make_generator(5)
    torch.rand(6, generator=g)
    torch.testing.assert_close(out, GaussianNoise("vector", 1.0)(x, g), rtol=0, atol=0)
    with pytest.raises(MMIBError, match=r"probability p must lie in \[0, 1\]"):
        RandomApply(GaussianNoise("vector"), p=-0.1)


def test_compose_chains_in_order_and_checks_kinds():
    x = torch.ones(3, 2, 10)

    class AddOne(Identity):
        def __call__(self, x, g=None, lengths=None):
            return x + 1

    class Double(Identity):
        def __call__(self, x, g=None, lengths=None):
            return 2 * x

    torch.testing.assert_close(Compose("signal", [AddOne("signal"), Double("signal")])(x), torch.full_like(x, 4.0))
    torch.testing.assert_close(Compose("signal", [Double("signal"), AddOne("signal")])(x), torch.full_like(x, 3.0))
    assert Compose("signal", [])(x) is x and Identity("image")(x) is x
    with pytest.raises(MMIBError, match="compose: augmentation 'noise' is for a vector, the pipeline for a signal"):
        Compose("signal", [GaussianNoise("vector")])


def test_augmentation_kind_is_checked_and_named():
    with pytest.raises(MMIBError, match="unknown data kind 'audio'; valid: vector, sequence, signal, image"):
        GaussianNoise("audio")
    with pytest.raises(MMIBError, match="'time_drop' does not apply to a image .*applies to sequence, signal"):
        TimeDrop("image")
    assert repr(GaussianNoise("vector", 0.5)) == "GaussianNoise(sigma=0.5)"
