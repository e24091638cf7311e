"""``rus`` (issue 20): the common time axis (token positions in seconds relative to the trial marker, shared by both
modalities), the opt-in ``time_axis`` of the token encoder (its default unchanged), and ``RUSMethod.hidden``."""

import pytest
import torch

from mmib.data.spec import DatasetSpec, ModalitySpec
from mmib.errors import MMIBError
from mmib.methods.registry import build_method
from mmib.nn.fusion_transformer import sincos_time

FNIRS_CH = tuple(f"S{i}_D{i} {c}" for i in range(1, 4) for c in ("hbo", "hbr"))
SPEC = DatasetSpec("toy", (ModalitySpec("eeg", "signal", (4, 256), rate=128.0),
                           ModalitySpec("fnirs", "signal", (6, 60), rate=10.0, channels=FNIRS_CH)))
SMALL = {"hidden_dim": 16, "component_dim": 8, "head_hidden": 16, "n_heads": 2, "augment_seed": 0,
         "time_start": {"eeg": -0.5, "fnirs": -2.0}}
ENC = {"signal": {"channels": [8, 8], "kernel_size": 5, "pool": 4}}


def test_rus_tokens_share_one_clock():
    m = build_method("rus", SPEC, SMALL, ENC)
    assert m.time_axes == {"eeg": (-0.5, 128.0), "fnirs": (-2.0, 10.0)}
    te = m.tokenizers["eeg"].token_times(256, 16)
    tf = m.tokenizers["fnirs"].token_times(60, 4)
    # EEG window -0.5…1.5 s, fNIRS -2…4 s: token centres in seconds after the marker
    assert float(te[0]) == pytest.approx(-0.5 + 0.0625) and float(tf[0]) == pytest.approx(-2.0 + 0.75)
    # a token of each modality at the same time gets the same position
    same = torch.tensor([1.0, 1.0])
    emb = sincos_time(same, 16, m.tokenizers["eeg"].time_resolution_s)
    assert torch.equal(emb[0], emb[1])
    idx = build_method("rus", SPEC, {**SMALL, "positions": "index"}, ENC)
    assert idx.time_axes == {"eeg": None, "fnirs": None} and idx.tokenizers["eeg"].time_axis is None
    with pytest.raises(MMIBError, match="positions must be one of"):
        build_method("rus", SPEC, {**SMALL, "positions": "minutes"}, ENC)
    with pytest.raises(MMIBError, match="method.time_start.eeg must be a number"):
        build_method("rus", SPEC, {**SMALL, "time_start": {"eeg": "early"}}, ENC)
    with pytest.raises(MMIBError, match="time_start"):
        build_method("rus", SPEC, {**SMALL, "time_start": {"ecg": 0.0}}, ENC)


def test_hidden_is_what_the_heads_read():
    m = build_method("rus", SPEC, SMALL, ENC).eval()
    b = {"x": {"eeg": torch.randn(5, 4, 256), "fnirs": torch.randn(5, 6, 60)}}
    with torch.no_grad():
        h, c = m.hidden(b), m.components(b)
        assert set(h) == {"eeg", "fnirs"} and h["eeg"].shape == (5, 16)
        assert torch.allclose(m.head_r["eeg"](h["eeg"]), c["R_eeg"], atol=1e-6)
        assert torch.allclose(m.head_u["fnirs"](h["fnirs"]), c["U_fnirs"], atol=1e-6)
        assert set(m.hidden(b, ["fnirs"])) == {"fnirs"}
    assert set(c) == {"R_eeg", "R_fnirs", "U_eeg", "U_fnirs", "S"}
