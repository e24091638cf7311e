"""mmib.data.physio.sim_signals: the simulator's signal primitives against closed forms."""

import numpy as np
import pytest

from mmib.data.physio.sim_signals import (
    band_noise,
    draw_seed,
    raised_cosine_gate,
    resampled,
    topography,
    zscore,
)


def test_draw_seed_is_the_generators_next_integer():
    a, b = np.random.default_rng(4), np.random.default_rng(4)
    seeds = [draw_seed(a) for _ in range(5)]
    assert seeds == [int(b.integers(0, 2**31 - 1)) for _ in range(5)]
    assert all(isinstance(s, int) and 0 <= s < 2**31 - 1 for s in seeds) and len(set(seeds)) == 5


def test_topography_is_a_normalized_gaussian_of_distance():
    pos = np.array([[0.0, 0.0, 0.1], [0.03, 0.0, 0.1], [0.0, 0.06, 0.1]])
    w = topography(pos, np.array([0.0, 0.0, 0.1]), width_m=0.03)
    np.testing.assert_allclose(w, [1.0, np.exp(-0.5), np.exp(-2.0)], rtol=1e-12)
    off = topography(pos, np.array([0.03, 0.03, 0.1]), width_m=0.03)
    assert off.max() == 1.0 and np.argmax(off) in (0, 1, 2)  # normalized to its largest value


def test_raised_cosine_gate_closed_form():
    t = np.array([0.0, 0.5, 0.75, 1.0, 2.0, 3.0, 3.25, 3.5, 4.0])
    g = raised_cosine_gate(t, start=1.0, stop=3.0, ramp=0.5)
    np.testing.assert_allclose(g, [0.0, 0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.0, 0.0], atol=1e-12)
    fine = np.linspace(0, 4, 4001)
    gf = raised_cosine_gate(fine, 1.0, 3.0, 0.5)
    assert np.abs(np.diff(gf)).max() < 0.01  # continuous: no step at the ramp ends
    assert np.all(np.diff(gf[fine <= 2]) >= -1e-12) and np.all(np.diff(gf[fine >= 2]) <= 1e-12)


def test_resampled_and_zscore():
    x = 3.0 + 2.0 * np.arange(100) / 50.0  # a ramp sampled at 50 Hz: value 3 + 2 t
    t_out = np.array([0.0, 0.31, 1.0, 1.5])
    np.testing.assert_allclose(resampled(x, 50.0, t_out), 3.0 + 2.0 * t_out, rtol=1e-12)
    z = zscore([1.0, 2.0, 3.0, 6.0])
    assert z.mean() == pytest.approx(0.0, abs=1e-12) and z.std() == pytest.approx(1.0, rel=1e-9)
    np.testing.assert_array_equal(zscore(np.full(4, 7.0)), np.zeros(4))


def test_band_noise_is_unit_variance_and_in_band():
    x = band_noise(np.random.default_rng(0), 4000, 100.0, (8.0, 12.0))
    assert x.shape == (4000,) and x.std() == pytest.approx(1.0, rel=1e-9)
    p = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(4000, 1 / 100.0)
    # MNE's default transition bands: 2 Hz below 8 Hz, 3 Hz above 12 Hz (stop-band edges 6 and 15 Hz)
    assert p[(f >= 6.0) & (f <= 15.0)].sum() / p.sum() > 0.99
    assert p[(f >= 8.0) & (f <= 12.0)].sum() / p.sum() > 0.6
    np.testing.assert_array_equal(x, band_noise(np.random.default_rng(0), 4000, 100.0, (8.0, 12.0)))
