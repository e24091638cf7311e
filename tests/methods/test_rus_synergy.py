"""``rus`` (issue 20): the time-resolved EEG target ``band_envelope`` against a numpy reference, the multiplicative
interaction of the synergy fusion, the ``synergy`` and ``hsic_pairs`` options and their loss terms."""

import numpy as np
import pytest
import torch

from mmib.data.physio.eeg_fnirs_sim import EEG_BANDS
from mmib.data.physio.targets import band_envelope_targets, target_dim
from mmib.data.spec import DatasetSpec, ModalitySpec
from mmib.errors import MMIBError
from mmib.methods.registry import build_method

FNIRS_CH = tuple(f"S{i}_D{i} {c}" for i in range(1, 4) for c in ("hbo", "hbr"))
SPEC = DatasetSpec("toy", (ModalitySpec("eeg", "signal", (4, 256), rate=128.0),
                           ModalitySpec("fnirs", "signal", (6, 60), rate=10.0, channels=FNIRS_CH)))
SMALL = {"hidden_dim": 16, "component_dim": 8, "head_hidden": 16, "n_heads": 2, "augment_seed": 0,
         "time_start": {"eeg": -0.5, "fnirs": -2.0}}
ENC = {"signal": {"channels": [8, 8], "kernel_size": 5, "pool": 4}}


def test_band_envelope_matches_numpy_and_locates_a_burst():
    rate, t = 128.0, 300  # 4 windows of 64 samples, 44 samples dropped
    tt = np.arange(t) / rate
    rng = np.random.default_rng(0)
    burst = np.where((tt >= 1.0) & (tt < 1.5), 1.0, 0.0) * np.sin(2 * np.pi * 36 * tt)
    x = np.stack([np.sin(2 * np.pi * 10 * tt) + burst, rng.normal(0, 0.1, t)])[None]
    got = band_envelope_targets(torch.tensor(x, dtype=torch.float64), rate, window_s=0.5).numpy()[0]
    ref = []
    for w in range(4):
        seg = x[0][:, w * 64:(w + 1) * 64]
        f = np.fft.rfftfreq(64, 1 / rate)
        p = (np.abs(np.fft.rfft(seg - seg.mean(-1, keepdims=True), axis=-1)) ** 2).mean(0)
        ref += [np.log(p[(f >= lo) & (f < hi)].sum() + 1e-12) for lo, hi in EEG_BANDS.values()]
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)
    gamma = got.reshape(4, 5)[:, list(EEG_BANDS).index("gamma")]
    assert int(np.argmax(gamma)) == 2  # the burst at 1.0–1.5 s falls in the third window
    assert target_dim("band_envelope", SPEC.modality("eeg")) == 5 * 4
    with pytest.raises(MMIBError, match="need a signal batch"):
        band_envelope_targets(torch.randn(3, 10), rate)


def test_product_interaction_is_a_product_of_the_two_modalities():
    m = build_method("rus", SPEC, {**SMALL, "targets": {"eeg": "band_envelope"}}, ENC).eval()
    assert m.interaction == "product" and m.decoders["eeg"][-1].out_features == 5 * 4
    x = {"eeg": torch.randn(4, 4, 256), "fnirs": torch.randn(4, 6, 60)}
    seen = {}
    m.head_s.register_forward_hook(lambda mod, inp, out: seen.update(inp=inp[0]))
    with torch.no_grad():
        s = m.fuse({"x": x})
        h = m.hidden({"x": x})
        prod = m.product_norm(m.product["eeg"](h["eeg"]) * m.product["fnirs"](h["fnirs"]))
    assert seen["inp"].shape == (4, 32) and torch.allclose(seen["inp"][:, 16:], prod, atol=1e-6)
    assert torch.allclose(m.head_s(seen["inp"]), s)
    none = build_method("rus", SPEC, {**SMALL, "interaction": "none"}, ENC)
    assert not hasattr(none, "product") and none.head_s[0].in_features == 16
    with pytest.raises(MMIBError, match="interaction must be one of"):
        build_method("rus", SPEC, {**SMALL, "interaction": "sum"}, ENC)


def test_synergy_and_hsic_options_reach_the_loss():
    b = {"x": {"eeg": torch.randn(8, 4, 256), "fnirs": torch.randn(8, 6, 60)}}
    m = build_method("rus", SPEC, {**SMALL, "weights": {"hsic": 1.0}}, ENC)
    assert m.targets == {"eeg": "band_envelope_peak", "fnirs": "hemodynamic"}
    assert build_method("rus", SPEC, SMALL, ENC).objective.lambda_hsic == 0.0  # L_hsic is off by default
    terms = m.loss(b).terms
    assert {"L_syn", "L_syn_eeg", "L_syn_fnirs", "L_hsic"} <= set(terms)
    # hsic_pairs "modality": (R_m, U_m) and (U_eeg, U_fnirs) only
    assert {k for k in terms if k.startswith("hsic_")} == {"hsic_R_eeg__U_eeg", "hsic_R_fnirs__U_fnirs",
                                                          "hsic_U_eeg__U_fnirs"}
    lit = build_method("rus", SPEC, {**SMALL, "synergy": "literal", "hsic_pairs": "all",
                                     "weights": {"hsic": 0.5}}, ENC)
    t2 = lit.loss(b).terms
    assert "L_syn" not in t2 and len([k for k in t2 if k.startswith("hsic_")]) == 9
    off = build_method("rus", SPEC, SMALL, ENC)
    assert "L_hsic" not in off.loss(b).terms and off.objective.lambda_syn == 3.0
    with pytest.raises(MMIBError, match="synergy must be one of"):
        build_method("rus", SPEC, {**SMALL, "synergy": "comm"}, ENC)
    with pytest.raises(MMIBError, match="hsic_pairs"):
        build_method("rus", SPEC, {**SMALL, "hsic_pairs": "some"}, ENC)


def test_l_syn_moves_the_fusion_and_s_head_only():
    zero = {"R": 0.0, "U": 0.0, "S": 0.0, "orth": 0.0, "cross": 0.0, "hsic": 0.0, "syn": 1.0}
    m = build_method("rus", SPEC, {**SMALL, "weights": zero}, ENC)
    b = {"x": {"eeg": torch.randn(8, 4, 256), "fnirs": torch.randn(8, 6, 60)}}
    out = m.loss(b)
    assert float(out.terms["L_syn"]) > 0
    out.loss.backward()

    def moved(mod):
        return any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in mod.parameters())

    assert moved(m.fusion) and moved(m.head_s) and moved(m.product)
    assert not moved(m.tokenizers) and not moved(m.temporal) and not moved(m.head_r) and not moved(m.head_u)

    m_all = build_method("rus", SPEC, {**SMALL, "weights": zero, "syn_grad": "all"}, ENC)
    m_all.loss(b).loss.backward()
    assert moved(m_all.tokenizers)  # syn_grad all: the encoders are moved too
    with pytest.raises(MMIBError, match="syn_grad"):
        build_method("rus", SPEC, {**SMALL, "syn_grad": "some"}, ENC)


@pytest.mark.parametrize("synergy", ["unimodal_hsic", "interaction"])
def test_s_grad_fusion_keeps_l_s_off_the_encoders(synergy):
    only_s = {"R": 0.0, "U": 0.0, "S": 1.0, "orth": 0.0, "cross": 0.0, "hsic": 0.0, "syn": 0.0}
    b = {"x": {"eeg": torch.randn(8, 4, 256), "fnirs": torch.randn(8, 6, 60)}}

    def moved(mod):
        return any(p.grad is not None and float(p.grad.abs().sum()) > 0 for p in mod.parameters())

    torch.manual_seed(0)
    m = build_method("rus", SPEC, {**SMALL, "weights": only_s, "synergy": synergy, "s_grad": "fusion"}, ENC)
    out = m.loss(b)
    assert float(out.terms["L_S"]) > 0
    out.loss.backward()
    assert moved(m.fusion) and moved(m.head_s) and moved(m.product)
    assert not moved(m.tokenizers) and not moved(m.temporal)
    # the default (all): the same L_S reaches the encoders; with the same weights and augmentation draws the value of
    # L_S is the same (detaching changes gradients, not values)
    torch.manual_seed(0)
    a = build_method("rus", SPEC, {**SMALL, "weights": only_s, "synergy": synergy}, ENC)
    a.load_state_dict(m.state_dict())
    out_a = a.loss(b)
    out_a.loss.backward()
    assert moved(a.tokenizers) and moved(a.temporal)
    if synergy != "interaction":  # interaction draws random partners per pass: values differ by the draw
        assert torch.allclose(out_a.terms["L_S"], out.terms["L_S"], atol=1e-5)
    with pytest.raises(MMIBError, match="s_grad"):
        build_method("rus", SPEC, {**SMALL, "s_grad": "encoders"}, ENC)

