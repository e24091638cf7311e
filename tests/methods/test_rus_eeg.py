"""``rus`` (issue 20): the EEG target ``band_envelope_peak`` (the channel-mean band envelope plus each band's peak
window power over channels and windows) against a float64 numpy reference."""

import math

import numpy as np
import pytest
import torch

from mmib.data.physio.eeg_fnirs_sim import EEG_BANDS
from mmib.data.physio.targets import (
    band_envelope_targets,
    band_peak_targets,
    reconstruction_targets,
    target_dim,
    zscore_batch,
)
from mmib.data.spec import ModalitySpec
from mmib.errors import MMIBError

RATE = 128.0
EEG = ModalitySpec("eeg", "signal", (3, 300), rate=RATE)


def _peak_reference(x: np.ndarray, rate: float, win: int) -> np.ndarray:
    n, c, t = x.shape
    f = np.fft.rfftfreq(win, 1 / rate)
    out = np.full((n, len(EEG_BANDS)), -np.inf)
    for i in range(n):
        for ch in range(c):
            for w in range(t // win):
                seg = x[i, ch, w * win:(w + 1) * win]
                p = np.abs(np.fft.rfft(seg - seg.mean())) ** 2
                for b, (lo, hi) in enumerate(EEG_BANDS.values()):
                    out[i, b] = max(out[i, b], np.log(p[(f >= lo) & (f < hi)].sum() + 1e-12))
    return out


def test_band_peak_matches_numpy_and_finds_a_focal_burst():
    rng = np.random.default_rng(0)
    tt = np.arange(300) / RATE
    x = rng.normal(0, 0.5, (2, 3, 300))
    x[1, 2] += 3 * np.where((tt >= 1.6) & (tt < 2.0), 1.0, 0.0) * np.sin(2 * np.pi * 37 * tt)  # one channel, 0.4 s
    got = band_peak_targets(torch.tensor(x), RATE).numpy()
    np.testing.assert_allclose(got, _peak_reference(x, RATE, 64), rtol=1e-9, atol=1e-9)
    gamma = list(EEG_BANDS).index("gamma")
    env = band_envelope_targets(torch.tensor(x), RATE).numpy().reshape(2, 4, 5)[:, :, gamma]
    # the burst raises the peak more than the channel-mean envelope's largest window (it is diluted over channels)
    assert got[1, gamma] - got[0, gamma] > env[1].max() - env[0].max() > 0
    with pytest.raises(MMIBError, match="band-peak targets need a signal batch"):
        band_peak_targets(torch.randn(3, 10), RATE)


def test_band_envelope_peak_target_blocks_weigh_equally():
    x = torch.randn(6, 3, 300, dtype=torch.float64)
    got = reconstruction_targets("band_envelope_peak", x, EEG)
    env, peak = band_envelope_targets(x, RATE), band_peak_targets(x, RATE)
    w = 300 // 64
    assert got.shape == (6, 5 * w + 5) and target_dim("band_envelope_peak", EEG) == 5 * w + 5
    torch.testing.assert_close(got[:, : 5 * w], zscore_batch(env))
    torch.testing.assert_close(got[:, 5 * w:], zscore_batch(peak) * math.sqrt(w))
    # equal weights in the MSE: both blocks have the same total variance
    assert torch.isclose(got[:, : 5 * w].var(0).sum(), got[:, 5 * w:].var(0).sum())
    with pytest.raises(MMIBError, match="target 'band_envelope_peak' needs a signal"):
        reconstruction_targets("band_envelope_peak", torch.randn(6, 7), ModalitySpec("v", "vector", (7,)))


def test_time_resolved_band_targets_get_the_filterbank_front_end():
    from mmib.data.spec import DatasetSpec
    from mmib.methods.registry import build_method
    from mmib.nn.encoders import BandPowerFeatures

    fnirs_ch = tuple(f"S{i}_D{i} {c}" for i in range(1, 4) for c in ("hbo", "hbr"))
    spec = DatasetSpec("toy", (ModalitySpec("eeg", "signal", (4, 256), rate=RATE),
                               ModalitySpec("fnirs", "signal", (6, 60), rate=10.0, channels=fnirs_ch)))
    small = {"hidden_dim": 16, "component_dim": 8, "head_hidden": 16, "n_heads": 2, "augment_seed": 0,
             "time_start": {"eeg": -0.5, "fnirs": -2.0}}
    enc = {"signal": {"type": "cnn1d", "channels": [8, 8], "kernel_size": 5, "pool": 4}}

    def front(m):
        return {k: type(t.net).__name__ for k, t in m.tokenizers.items()}

    m = build_method("rus", spec, small, enc)  # default EEG target band_envelope_peak: filterbank for the EEG only
    assert m.targets["eeg"] == "band_envelope_peak" and isinstance(m.tokenizers["eeg"].net, BandPowerFeatures)
    assert front(m)["fnirs"] == "Sequential" and m.objective.lambda_u == 3.0
    x = {"eeg": torch.randn(4, 4, 256), "fnirs": torch.randn(4, 6, 60)}
    assert m.tokenizers["eeg"](x["eeg"])[0].shape == (4, 8, 16)  # 2 s at 0.25 s per token
    assert torch.isfinite(m.loss({"x": x}).loss)
    for target in ("band_envelope", "band_envelope_peak"):
        m = build_method("rus", spec, {**small, "targets": {"eeg": target}}, enc)
        assert isinstance(m.tokenizers["eeg"].net, BandPowerFeatures)
    # the whole-epoch band_power target (the literal design) keeps the encoder config's CNN
    m = build_method("rus", spec, {**small, "targets": {"eeg": "band_power"}}, enc)
    assert front(m) == {"eeg": "Sequential", "fnirs": "Sequential"}
    # an encoder named for the modality wins
    m = build_method("rus", spec, small, {**enc, "modalities": {"eeg": {"type": "cnn1d"}}})
    assert front(m)["eeg"] == "Sequential"
