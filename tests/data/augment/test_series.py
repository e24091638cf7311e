"""mmib.data.augment.series: noise, mixup and the time-axis augmentations (time_drop, crop, permute) do what they
say, keep shapes and padding, and name bad parameters."""

import pytest
import torch

from mmib.data.augment import Crop, GaussianNoise, Mixup, Permute, TimeDrop, make_generator
from mmib.errors import MMIBError


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


def test_noise_has_the_given_sigma_and_keeps_padding_zero():
    x = torch.randn(400, 3, 50)
    out = GaussianNoise("signal", 0.3)(x, make_generator(0))
    assert float((out - x).std()) == pytest.approx(0.3, rel=0.02)
    assert abs(float((out - x).mean())) < 0.01
    torch.testing.assert_close(GaussianNoise("signal", 0.0)(x, make_generator(0)), x)
    seq = torch.ones(4, 10, 2)
    padded = GaussianNoise("sequence", 1.0)(seq, make_generator(0), torch.tensor([10, 7, 3, 1]))
    for i, n in enumerate([10, 7, 3, 1]):
        assert float(padded[i, n:].abs().sum()) == 0.0 and bool((padded[i, :n] != 1).all())
    with pytest.raises(MMIBError, match="noise: sigma must be >= 0"):
        GaussianNoise("vector", -1.0)


def test_mixup_with_lambda_one_is_the_identity_and_partners_come_from_the_batch():
    x = torch.randn(8, 5)
    torch.testing.assert_close(Mixup("vector", lam_min=1.0)(x, make_generator(0)), x)
    # with lam_min = 0 every output lies on the segment between its sample and one batch partner
    out = Mixup("vector", lam_min=0.0)(x, make_generator(1))
    for i in range(8):
        d = out[i] - x[i]
        ok = False
        for j in range(8):
            seg = x[j] - x[i]
            if float(seg.norm()) == 0.0:
                ok = ok or float(d.norm()) < 1e-6
                continue
            t = float(d @ seg / (seg @ seg))
            ok = ok or (-1e-6 <= t <= 1 + 1e-6 and float((d - t * seg).norm()) < 1e-5)
        assert ok, i
    with pytest.raises(MMIBError, match=r"mixup: lam_min must lie in \[0, 1\]"):
        Mixup("vector", lam_min=1.5)


def test_time_axis_of_signals_is_the_last_one():
    """A signal is (N, C, T): time_drop zeroes whole time steps (every channel at once), never whole channels."""
    x = torch.ones(50, 4, 20)
    out = TimeDrop("signal", max_fraction=0.9, min_fraction=0.5)(x, make_generator(0))
    zero_steps = (out == 0).all(dim=1)  # (N, T)
    assert torch.equal((out == 0).any(dim=1), zero_steps)
    assert bool((zero_steps.sum(1) >= 10).all()) and bool((zero_steps.sum(1) <= 18).all())


def test_time_axis_options_are_checked():
    with pytest.raises(MMIBError, match="time_drop: need 0 <= min_fraction <= max_fraction < 1"):
        TimeDrop("sequence", max_fraction=0.2, min_fraction=0.5)
    with pytest.raises(MMIBError, match="crop: need 0 < min_fraction <= max_fraction <= 1"):
        Crop("signal", min_fraction=0.0)
    with pytest.raises(MMIBError, match="permute: n_segments must be >= 2"):
        Permute("signal", n_segments=1)
