"""mmib.data.physio.fnirs_forward: the simulator's fNIRS forward model - canonical HRF blocks, optode layout with
short-separation channels, MNE Info of the raw intensities, and the HbO/HbR -> OD map (the exact inverse of MNE's
Beer-Lambert law)."""

import numpy as np
import pytest

from mmib.data.physio.eeg_fnirs_sim import EEGFNIRSSimConfig
from mmib.data.physio.fnirs_forward import (
    fnirs_optode_positions,
    fnirs_raw_info,
    hrf_peak_latency,
    hrf_response,
    mbll_forward_matrices,
    short_channel_layout,
)
from mmib.data.physio.montage import fnirs_layout


def test_forward_matrices_invert_mne_beer_lambert():
    import mne

    cfg = EEGFNIRSSimConfig(n_fnirs_channels=3)
    info = fnirs_raw_info(cfg)
    fwd = mbll_forward_matrices(info, cfg.ppf)
    hb = np.random.default_rng(0).normal(0, 1e-6, (3, 2, 50))
    od = np.einsum("pij,pjt->pit", fwd, hb).reshape(6, 50)
    raw = mne.io.RawArray(np.exp(-od) * 0.01, info, verbose=False)
    back = mne.preprocessing.nirs.beer_lambert_law(mne.preprocessing.nirs.optical_density(raw), ppf=cfg.ppf)
    got = back.get_data().reshape(3, 2, 50)
    # optical_density divides by the mean intensity, so each channel is recovered up to a constant
    np.testing.assert_allclose(got - got.mean(axis=-1, keepdims=True), hb - hb.mean(axis=-1, keepdims=True),
                               atol=1e-12)  # fmt: skip


def test_hrf_blocks_peak_at_their_amplitude_and_add_up():
    t = np.arange(0.0, 120.0, 0.1)
    one = hrf_response(t, [10.0], [2.5], duration=2.0)
    assert one.max() == pytest.approx(2.5, rel=1e-3)  # normalized: the block's peak is its amplitude
    assert t[np.argmax(one)] == pytest.approx(10.0 + hrf_peak_latency(2.0), abs=0.11)
    assert np.abs(one[t < 10.0]).max() < 1e-9  # causal
    two = hrf_response(t, [10.0, 60.0], [2.5, -1.0], duration=2.0)
    np.testing.assert_allclose(two, one + hrf_response(t, [60.0], [-1.0], duration=2.0), atol=1e-9)  # linear
    np.testing.assert_array_equal(hrf_response(t, [], [], duration=2.0), np.zeros_like(t))
    assert 4.0 < hrf_peak_latency(0.1) < 6.5 < hrf_peak_latency(10.0)  # Glover: ~5 s, later for longer blocks


def test_short_channels_sit_next_to_their_source():
    cfg = EEGFNIRSSimConfig(n_fnirs_channels=6, n_short_channels=3, short_separation_m=0.008)
    names, src, det = fnirs_layout(6)
    sn, ss, sd = short_channel_layout(cfg, names, src, det)
    n_det = max(int(n.split("_D")[1]) for n in names)
    assert sn == [f"S{i}_D{n_det + i}" for i in (1, 2, 3)]  # one per source, new detectors after the long ones
    np.testing.assert_allclose(np.linalg.norm(sd - ss, axis=1), 0.008, rtol=1e-12)
    radial = ss / np.linalg.norm(ss, axis=1, keepdims=True)
    np.testing.assert_allclose(((sd - ss) * radial).sum(1), 0.0, atol=1e-12)  # tangent to the head
    all_src, all_det = fnirs_optode_positions(cfg)
    np.testing.assert_array_equal(all_src, np.vstack([src, ss]))
    np.testing.assert_array_equal(all_det, np.vstack([det, sd]))
    none = EEGFNIRSSimConfig(n_fnirs_channels=6)
    np.testing.assert_array_equal(fnirs_optode_positions(none)[0], src)


def test_raw_info_names_positions_and_wavelengths():
    cfg = EEGFNIRSSimConfig(n_fnirs_channels=2, n_short_channels=1, wavelengths=(690.0, 830.0), fnirs_sfreq=8.0)
    info = fnirs_raw_info(cfg)
    assert info["ch_names"] == ["S1_D1 690", "S1_D1 830", "S2_D2 690", "S2_D2 830", "S1_D3 690", "S1_D3 830"]
    assert info["sfreq"] == 8.0 and set(info.get_channel_types()) == {"fnirs_cw_amplitude"}
    src, det = fnirs_optode_positions(cfg)
    for i, ch in enumerate(info["chs"]):
        np.testing.assert_array_equal(ch["loc"][3:6], src[i // 2])
        np.testing.assert_array_equal(ch["loc"][6:9], det[i // 2])
        np.testing.assert_allclose(ch["loc"][:3], (src[i // 2] + det[i // 2]) / 2)
        assert ch["loc"][9] == (690.0, 830.0)[i % 2]
