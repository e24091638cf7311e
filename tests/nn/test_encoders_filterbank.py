"""The ``filterbank`` signal encoder (issue 20): ShallowConvNet's band-power front end (temporal filterbank →
spatial filter → BatchNorm → square → windowed mean → log) against a float64 numpy reference, its windows on the
time axis, and its settings and errors. The default signal encoder stays ``cnn1d``."""

import numpy as np
import pytest
import torch

from mmib.data.spec import ModalitySpec
from mmib.errors import MMIBError
from mmib.nn import build_encoder
from mmib.nn.encoders import BandPowerFeatures, CNN1DEncoder, FilterbankEncoder
from mmib.nn.fusion_transformer import TokenEncoder

EEG = ModalitySpec("eeg", "signal", (3, 200), rate=100.0)


def _reference(x: np.ndarray, w_t: np.ndarray, w_s: np.ndarray, pool: int, stride: int, bn_eps: float) -> np.ndarray:
    """float64 loops: per filter f, y_f(t) = sum_g w_s[f, g, c] * sum_k w_t[g, k] x_c(t + k - K//2) (zero padded),
    BatchNorm at its initial running statistics (mean 0, var 1, affine identity), squared, mean over the windows
    [j·stride − pad, j·stride − pad + pool) ∩ [0, T), j < round(T / stride), log."""
    n, c, t = x.shape
    f, kk = w_t.shape
    xp = np.pad(x, ((0, 0), (0, 0), (kk // 2, kk // 2)))
    temp = np.zeros((n, f, c, t))
    for g in range(f):
        for k in range(kk):
            temp[:, g] += w_t[g, k] * xp[:, :, k:k + t]
    y = np.einsum("fgc,ngct->nft", w_s, temp) / np.sqrt(1.0 + bn_eps)
    sq = y**2
    pad = (pool - stride) // 2
    n_out = int(round(t / stride))
    out = np.zeros((n, f, n_out))
    for j in range(n_out):
        lo, hi = max(0, j * stride - pad), min(t, j * stride - pad + pool)
        out[:, :, j] = sq[:, :, lo:hi].mean(-1)
    return np.log(np.maximum(out, 1e-6))


def test_band_power_features_match_a_float64_reference():
    torch.manual_seed(0)
    feat = BandPowerFeatures(3, filters=4, kernel=5, pool=20, stride=10).double().eval()
    x = torch.randn(2, 3, 97, dtype=torch.float64)
    with torch.no_grad():
        got = feat(x).numpy()
    ref = _reference(x.numpy(), feat.temporal.weight[:, 0, 0].detach().numpy(),
                     feat.spatial.weight[:, :, :, 0].detach().numpy(), 20, 10, feat.norm.eps)
    assert got.shape == ref.shape == (2, 4, 10)
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-9)


def test_a_burst_sets_the_power_of_its_window():
    # a delta temporal filter and a spatial filter that reads channel 0: the features are the log mean power of
    # channel 0 per window, so a 40 Hz burst at 1.0-1.5 s is the largest in the windows centred there
    enc = FilterbankEncoder(3, 8, rate=100.0, filters=1, kernel_s=0.01, pool_s=0.5, stride_s=0.25).eval()
    assert enc.features.temporal.weight.shape == (1, 1, 1, 1)
    with torch.no_grad():
        enc.features.temporal.weight.fill_(1.0)
        enc.features.spatial.weight.zero_()
        enc.features.spatial.weight[0, 0, 0, 0] = 1.0
    tt = torch.arange(200) / 100.0
    x = 0.1 * torch.randn(1, 3, 200)
    x[0, 0] += torch.where((tt >= 1.0) & (tt < 1.5), torch.sin(2 * torch.pi * 40 * tt), torch.zeros(()))
    x[0, 1:] += 5 * torch.sin(2 * torch.pi * 40 * tt)  # other channels are not read
    with torch.no_grad():
        p = enc.features(x)[0, 0]
    assert p.shape == (8,)  # ceil(200 / 25) windows, centred at (j + 0.5) * 0.25 s
    centres = (torch.arange(8) + 0.5) * 0.25
    assert 1.0 <= float(centres[int(p.argmax())]) <= 1.5
    assert float(p.max() - p.min()) > 3.0


def test_build_and_token_times():
    cfg = {"signal": {"type": "cnn1d", "channels": [8, 8], "kernel_size": 7, "pool": 4},
           "modalities": {"eeg": {"type": "filterbank", "filters": 6}}}
    enc = build_encoder(EEG, 16, cfg)  # the cnn1d settings do not reach the filterbank
    assert isinstance(enc, FilterbankEncoder) and isinstance(enc, CNN1DEncoder)
    assert enc.features.temporal.kernel_size == (1, 21) and enc.fc.in_features == 6  # 0.2 s at 100 Hz, odd
    assert enc(torch.randn(4, 3, 200)).shape == (4, 16)
    # the default signal encoder is unchanged
    assert type(build_encoder(EEG, 16, {"signal": {"channels": [8, 8]}})) is CNN1DEncoder
    # as a token encoder: one token per power window, on the time axis of the epoch
    tok = TokenEncoder(EEG, 16, cfg, time_axis=(-0.5, 100.0))
    t, pad = tok(torch.randn(2, 3, 200))
    assert pad is None and t.shape == (2, 8, 16)
    np.testing.assert_allclose(tok.token_times(200, 8).numpy(), -0.5 + (np.arange(8) + 0.5) * 0.25, atol=1e-6)


def test_filterbank_errors():
    with pytest.raises(MMIBError, match=r"modality 'x': bad settings for encoder 'filterbank': .*sampling rate"):
        build_encoder(ModalitySpec("x", "signal", (3, 200)), 8, {"signal": {"type": "filterbank"}})
    with pytest.raises(MMIBError, match="stride <= pool"):
        build_encoder(EEG, 8, {"signal": {"type": "filterbank", "pool_s": 0.1, "stride_s": 0.2}})
    with pytest.raises(MMIBError, match="must be > 0 s"):
        build_encoder(EEG, 8, {"signal": {"type": "filterbank", "kernel_s": 0.0}})
    with pytest.raises(MMIBError, match="is a vector; encoder 'filterbank' expects a signal"):
        build_encoder(ModalitySpec("v", "vector", (7,)), 8, {"vector": {"type": "filterbank"}})
    enc = build_encoder(EEG, 8, {"signal": {"type": "filterbank", "pool_s": 1.0}})
    with pytest.raises(ValueError, match="fewer than the 100-sample power window"):
        enc(torch.randn(2, 3, 40))
