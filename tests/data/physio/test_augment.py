"""mmib.data.physio.augment: the physiological augmentations of the rus views (time mask, channel dropout, band SNR,
HRF amplitude, HRF delay) do what they say (HRF delay and band SNR also against a numpy reference), and the default /
configured pipelines."""

import numpy as np
import pytest
import torch

from mmib.data.augment import Compose, GaussianNoise, Identity, RandomApply
from mmib.data.physio.augment import (
    BandSNR,
    ChannelDropout,
    HRFAmplitude,
    HRFDelay,
    TimeMask,
    build_rus_augmentation,
    default_rus_augmentation,
)
from mmib.data.physio.eeg_fnirs_sim import EEG_BANDS
from mmib.data.spec import ModalitySpec
from mmib.errors import MMIBError, UnknownNameError


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("kind", ["signal", "sequence"])
def test_time_mask_zeroes_one_contiguous_segment(kind):
    x = torch.rand(200, 3, 50) + 1.0 if kind == "signal" else torch.rand(200, 50, 3) + 1.0
    out = TimeMask(kind, max_fraction=0.3)(x, _g())
    zero = (out == 0).all(dim=1) if kind == "signal" else (out == 0).all(dim=2)  # (N, T): whole time steps
    assert torch.equal(zero, (out == 0).any(dim=1) if kind == "signal" else (out == 0).any(dim=2))
    widths = zero.sum(1)
    assert int(widths.max()) <= 15 and float(widths.float().mean()) == pytest.approx(7.25, abs=1.5)
    for row in zero:
        idx = torch.nonzero(row).flatten()
        if len(idx):
            assert int(idx[-1] - idx[0]) + 1 == len(idx)  # contiguous
    assert torch.equal(out[out != 0], x[out != 0])
    with pytest.raises(MMIBError, match=r"time_mask: max_fraction must lie in \[0, 1\)"):
        TimeMask("signal", max_fraction=1.0)


def test_channel_dropout_keeps_at_least_one_channel():
    x = torch.ones(2000, 4, 10)
    out = ChannelDropout("signal", p_channel=0.5)(x, _g())
    kept = (out != 0).all(dim=2)  # (N, C), whole channels
    assert torch.equal(kept, (out != 0).any(dim=2))
    assert bool(kept.any(dim=1).all())
    assert float(1 - kept.float().mean()) == pytest.approx(0.5 * 3 / 4, abs=0.03)  # one forced keep per sample
    with pytest.raises(MMIBError, match="channel_dropout: p_channel"):
        ChannelDropout("signal", p_channel=1.0)
    with pytest.raises(MMIBError, match="does not apply to a sequence"):
        ChannelDropout("sequence")


def test_band_snr_scales_a_sine_inside_its_band_only():
    rate, t = 100.0, torch.arange(200, dtype=torch.float64) / 100.0
    alpha = torch.sin(2 * torch.pi * 10.0 * t)  # whole cycles: one FFT bin
    other = torch.sin(2 * torch.pi * 20.0 * t)
    x = torch.stack([alpha, other])[None].repeat(50, 1, 1)  # (N, 2, T)
    out = BandSNR("signal", rate=rate, max_db=6.0, bands={"alpha": (8.0, 13.0)})(x, _g())
    gain = out[:, 0].norm(dim=1) / alpha.norm()
    lo, hi = 10 ** (-6 / 20), 10 ** (6 / 20)
    assert float(gain.min()) >= lo - 1e-9 and float(gain.max()) <= hi + 1e-9 and float(gain.std()) > 0.1
    torch.testing.assert_close(out[:, 0], gain[:, None] * alpha)  # a pure scaling, no phase change
    torch.testing.assert_close(out[:, 1], x[:, 1])  # outside the band: untouched
    with pytest.raises(MMIBError, match="band_snr: need rate > 0"):
        BandSNR("signal", rate=0.0)


def test_hrf_amplitude_is_one_gain_per_sample():
    x = torch.rand(100, 3, 20) + 0.1
    ratio = (HRFAmplitude("signal", low=0.5, high=2.0)(x, _g()) / x).flatten(1)
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio))
    assert 0.5 <= float(ratio.min()) and float(ratio.max()) <= 2.0
    with pytest.raises(MMIBError, match="hrf_amplitude: need 0 < low <= high"):
        HRFAmplitude("signal", low=1.5, high=1.0)
    with pytest.raises(MMIBError, match="hrf_delay: need rate > 0 and max_shift_s >= 0"):
        HRFDelay("signal", rate=10.0, max_shift_s=-1.0)


def test_default_views_per_role():
    names = [a["name"] for a in default_rus_augmentation("band_power", "signal")]
    assert names == ["noise", "time_mask", "channel_dropout", "band_snr"]
    assert [a["name"] for a in default_rus_augmentation("hemodynamic", "signal")][-1] == "hrf_amplitude"
    assert [a["name"] for a in default_rus_augmentation("input", "signal")] == ["noise", "time_mask", "channel_dropout"]
    assert default_rus_augmentation("band_power", "vector") == [{"name": "noise", "sigma": 0.1}]
    assert all("hrf_delay" not in str(default_rus_augmentation(r, "signal")) for r in ("band_power", "hemodynamic"))


def test_build_rus_augmentation_fills_the_rate_and_names_errors():
    eeg = ModalitySpec("eeg", "signal", (2, 64), rate=128.0)
    assert isinstance(build_rus_augmentation(eeg, None), Identity)
    one = build_rus_augmentation(eeg, [{"name": "band_snr", "max_db": 3.0}])
    assert isinstance(one, BandSNR) and one.rate == 128.0 and one.max_db == 3.0
    both = build_rus_augmentation(eeg, default_rus_augmentation("band_power", "signal"))
    assert isinstance(both, Compose) and all(isinstance(a, RandomApply) for a in both.augs)
    assert isinstance(both.augs[0].aug, GaussianNoise) and isinstance(both.augs[3].aug, BandSNR)
    no_rate = ModalitySpec("eeg", "signal", (2, 64))
    with pytest.raises(MMIBError, match=r"modality 'eeg': augmentation 'hrf_delay' needs its sampling rate"):
        build_rus_augmentation(no_rate, [{"name": "hrf_delay"}])
    with pytest.raises(UnknownNameError, match=r"unknown augmentation 'time_masks'; did you mean 'time_mask'"):
        build_rus_augmentation(eeg, [{"name": "time_masks"}])
    with pytest.raises(MMIBError, match=r"augmentation 'time_mask' of modality 'eeg': bad parameters"):
        build_rus_augmentation(eeg, [{"name": "time_mask", "fraction": 0.2}])
    with pytest.raises(MMIBError, match=r"augmentation 'noise': probability p must lie in \[0, 1\]"):
        build_rus_augmentation(eeg, [{"name": "noise", "p": -1}])


def test_hrf_delay_shifts_by_whole_samples_with_edge_padding():
    aug = HRFDelay("signal", rate=10.0, max_shift_s=0.5)
    x = torch.arange(2 * 3 * 20, dtype=torch.float32).reshape(2, 3, 20)
    g = torch.Generator().manual_seed(3)
    shift = torch.round((-0.5 + torch.rand(2, generator=torch.Generator().manual_seed(3))) * 10).long()
    y = aug(x, g)
    for n in range(2):
        src = np.clip(np.arange(20) - int(shift[n]), 0, 19)
        np.testing.assert_array_equal(y[n].numpy(), x[n].numpy()[:, src])


def test_band_snr_changes_only_one_band_and_zero_db_is_identity():
    x = torch.randn(4, 2, 256, dtype=torch.float64)
    same = BandSNR("signal", rate=128.0, max_db=0.0)(x, torch.Generator().manual_seed(0))
    torch.testing.assert_close(same, x)
    y = BandSNR("signal", rate=128.0, max_db=12.0)(x, torch.Generator().manual_seed(0))
    f = np.fft.rfftfreq(256, 1 / 128)
    px, py = np.abs(np.fft.rfft(x.numpy(), axis=-1)), np.abs(np.fft.rfft(y.numpy(), axis=-1))
    for n in range(4):
        ratio = py[n] / px[n]  # (C, F)
        changed = ~np.isclose(ratio, 1.0, atol=1e-9).all(0)
        bands = [name for name, (lo, hi) in EEG_BANDS.items() if changed[(f >= lo) & (f < hi)].any()]
        assert len(bands) <= 1
        inside = np.zeros_like(changed)
        if bands:
            lo, hi = EEG_BANDS[bands[0]]
            inside = (f >= lo) & (f < hi)
            assert np.allclose(ratio[:, inside], ratio[0, inside][0])  # one gain for the whole band
        assert not changed[~inside].any()


def test_channel_dropout_time_mask_and_amplitude():
    x = torch.ones(50, 4, 30)
    y = ChannelDropout("signal", p_channel=0.9)(x, torch.Generator().manual_seed(0))
    kept = (y.abs().sum(-1) > 0).sum(1)
    assert int(kept.min()) >= 1 and float((y == 0).float().mean()) > 0.5
    z = TimeMask("signal", max_fraction=0.5)(x, torch.Generator().manual_seed(0))
    for n in range(50):
        zero = np.flatnonzero((z[n] == 0).all(0).numpy())
        assert len(zero) <= 15 and (len(zero) == 0 or zero[-1] - zero[0] + 1 == len(zero))  # one segment
        assert bool((z[n] == 0).all(0).eq((z[n] == 0).any(0)).all())  # every channel masked alike
    a = HRFAmplitude("signal", 0.8, 1.25)(x, torch.Generator().manual_seed(0))
    gains = a[:, 0, 0]
    assert torch.allclose(a, gains[:, None, None].expand_as(a)) and float(gains.min()) >= 0.8 and float(gains.max()) <= 1.25
