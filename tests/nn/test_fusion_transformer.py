"""mmib.nn.fusion_transformer: the sinusoidal position encodings (index and seconds), the token encoder's
opt-in time axis, and the FusionTransformer's modality subsets, padding masks and errors."""

import pytest
import torch

from mmib.data.spec import ModalitySpec
from mmib.errors import MMIBError
from mmib.nn.fusion_transformer import FusionTransformer, TokenEncoder, sincos_1d, sincos_time

EEG = ModalitySpec("eeg", "signal", (4, 256), rate=128.0)
ENC = {"signal": {"channels": [8, 8], "kernel_size": 5, "pool": 4}}


def test_sincos_time_at_whole_units_is_the_index_encoding():
    assert torch.allclose(sincos_time(torch.arange(7.0) * 0.05, 12, 0.05), sincos_1d(7, 12), atol=1e-5)
    assert torch.allclose(sincos_time(torch.arange(5.0) * 2.0, 8, 2.0), sincos_1d(5, 8), atol=1e-5)


def test_token_encoder_default_is_unchanged_and_time_axis_uses_seconds():
    ms = EEG
    torch.manual_seed(0)
    plain = TokenEncoder(ms, 16, ENC)
    torch.manual_seed(0)
    timed = TokenEncoder(ms, 16, ENC, time_axis=(-0.5, 128.0), time_resolution_s=0.1)
    x = torch.randn(3, 4, 256)
    h = plain.tokenizer(plain.net(x).transpose(1, 2))
    n = h.shape[1]
    assert torch.equal(plain(x)[0], h + sincos_1d(n, 16))  # default: index positions, bit-identical
    times = -0.5 + (torch.arange(n) + 0.5) * (256 / n) / 128.0
    assert torch.allclose(timed.token_times(256, n), times)
    assert torch.allclose(timed(x)[0], h + sincos_time(times, 16, 0.1), atol=1e-6)
    with pytest.raises(MMIBError, match="rate > 0"):
        TokenEncoder(ms, 16, ENC, time_axis=(0.0, 0.0))
    with pytest.raises(MMIBError, match="1-D CNN"):
        TokenEncoder(ModalitySpec("v", "vector", (5,)), 16, {}, time_axis=(0.0, 1.0))


def test_dropping_tokens_equals_masking_them():
    torch.manual_seed(0)
    fusion = FusionTransformer(["a", "b"], 16, n_heads=2, n_layers=2).eval()
    toks = {"a": torch.randn(4, 3, 16), "b": torch.randn(4, 5, 16)}
    with torch.no_grad():
        dropped = fusion(toks, None, ["a"])
        masked = fusion(toks, {"b": torch.ones(4, 5, dtype=torch.bool)}, ["a", "b"])
        full_rows = fusion(toks, None, ["a"], return_tokens=True)[0]
    torch.testing.assert_close(dropped, masked, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dropped, full_rows, rtol=1e-5, atol=1e-5)
    with pytest.raises(MMIBError, match="unknown modality"):
        fusion(toks, None, ["c"])
    with pytest.raises(MMIBError, match="divisible"):
        FusionTransformer(["a"], 10, n_heads=4)


def test_fusion_transformer_named_errors_and_modality_order():
    with pytest.raises(MMIBError, match="n_layers must be >= 1"):
        FusionTransformer(["a"], 8, n_heads=2, n_layers=0)
    with pytest.raises(MMIBError, match="needs at least one modality"):
        FusionTransformer([], 8, n_heads=2)
    torch.manual_seed(0)
    fusion = FusionTransformer(["a", "b"], 8, n_heads=2).eval()
    toks = {"a": torch.randn(3, 2, 8), "b": torch.randn(3, 4, 8)}
    with pytest.raises(MMIBError, match="empty set of modalities"):
        fusion(toks, modalities=[])
    with pytest.raises(MMIBError, match=r"no tokens given for modality \['b'\]"):
        fusion({"a": toks["a"]}, modalities=["a", "b"])
    with pytest.raises(MMIBError, match=r"tokens of 'b' must be \(N=3, T, 8\)"):
        fusion({"a": toks["a"], "b": torch.randn(3, 4, 6)})
    with torch.no_grad():  # the fixed modality order, not the order of the dict, sets the sequence
        out, tok, pad = fusion({"b": toks["b"], "a": toks["a"]}, return_tokens=True)
        torch.testing.assert_close(out, fusion(toks))
    assert tok.shape == (3, 6, 8) and pad.shape == (3, 6) and not pad.any()
