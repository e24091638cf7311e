"""``rus`` with ``synergy_source: decoded`` (:mod:`mmib.methods.rus_decoded`, issue 20): Z_S is a centred bilinear
form of the detached decoded targets; ``decoded_centre: redundant`` first removes their linear prediction from the
redundant components."""

import pytest
import torch

from mmib.data.physio.targets import target_dim
from mmib.data.spec import DatasetSpec, ModalitySpec
from mmib.errors import MMIBError
from mmib.methods.registry import build_method

FNIRS_CH = tuple(f"S{i}_D{i} {c}" for i in range(1, 4) for c in ("hbo", "hbr"))
SPEC = DatasetSpec("toy", (ModalitySpec("eeg", "signal", (4, 256), rate=128.0),
                           ModalitySpec("fnirs", "signal", (6, 60), rate=10.0, channels=FNIRS_CH)))
SMALL = {"hidden_dim": 16, "component_dim": 8, "head_hidden": 16, "n_heads": 2, "augment_seed": 0,
         "time_start": {"eeg": -0.5, "fnirs": -2.0}, "synergy_source": "decoded"}
ENC = {"signal": {"channels": [8, 8], "kernel_size": 5, "pool": 4}}
ONLY_S = {"R": 0.0, "U": 0.0, "S": 1.0, "orth": 0.0, "cross": 0.0, "hsic": 0.0, "syn": 1.0}


def _batch(n=8):
    return {"x": {"eeg": torch.randn(n, 4, 256), "fnirs": torch.randn(n, 6, 60)}}


def _moved(grads, prefixes):
    return any(g is not None and float(g.abs().sum()) > 0 for n, g in grads.items() if n.startswith(prefixes))


def test_decoded_z_s_is_a_centred_bilinear_form_of_the_decoded_targets():
    m = build_method("rus", SPEC, SMALL, ENC).eval()
    x = _batch(4)
    with torch.no_grad():
        h = m.hidden(x)
        t = {k: m.product_centre[k](m.decoders[k](m.head_u[k](h[k]))) for k in ("eeg", "fnirs")}
        ref = m.head_s(m.product_norm(m.product["eeg"](t["eeg"]) * m.product["fnirs"](t["fnirs"])))
        assert torch.allclose(m.fuse(x), ref, atol=1e-6)
    assert m.product["fnirs"].in_features == target_dim("hemodynamic", SPEC.modality("fnirs"))
    assert m.head_s[0].in_features == 16  # the product branch alone
    assert m.product["eeg"].bias is None and not m.product_centre["eeg"].affine
    assert not hasattr(m, "centre_fit")
    tr = build_method("rus", SPEC, {**SMALL, "weights": ONLY_S}, ENC)
    out = tr.loss(_batch())
    assert "L_centre" not in out.terms
    out.loss.backward()
    grads = {n: p.grad for n, p in tr.named_parameters()}
    assert _moved(grads, ("product",))
    assert not _moved(grads, ("decoders", "head_u", "head_r", "tokenizers", "temporal"))


def test_redundant_centring_removes_the_prediction_from_z_r_and_trains_it_alone():
    cfg = {**SMALL, "decoded_centre": "redundant"}
    m = build_method("rus", SPEC, cfg, ENC).eval()
    x = _batch(4)
    with torch.no_grad():
        h = m.hidden(x)
        zr = torch.cat([m.head_r[k](h[k]) for k in ("eeg", "fnirs")], 1)
        t = {k: m.product_centre[k](m.decoders[k](m.head_u[k](h[k])) - m.centre_fit[k](zr)) for k in ("eeg", "fnirs")}
        ref = m.head_s(m.product_norm(m.product["eeg"](t["eeg"]) * m.product["fnirs"](t["fnirs"])))
        assert torch.allclose(m.fuse(x), ref, atol=1e-6)
    zero = dict.fromkeys(ONLY_S, 0.0)
    tr = build_method("rus", SPEC, {**cfg, "weights": zero}, ENC)
    out = tr.loss(_batch())
    assert float(out.terms["L_centre"]) > 0 and torch.allclose(out.loss, out.terms["L_centre"])  # the only term left
    out.loss.backward()
    grads = {n: p.grad for n, p in tr.named_parameters()}
    assert _moved(grads, ("centre_fit",))
    assert not _moved(grads, ("decoders", "head_u", "head_r", "tokenizers", "temporal", "product", "head_s"))


def test_other_centring_predicts_each_target_from_the_other_modality_alone():
    cfg = {**SMALL, "decoded_centre": "other"}
    m = build_method("rus", SPEC, cfg, ENC).eval()
    assert m.centre_fit["eeg"].in_features == 8  # one Z_R (component_dim), not both
    x = _batch(4)
    with torch.no_grad():
        h = m.hidden(x)
        zr = {k: m.head_r[k](h[k]) for k in ("eeg", "fnirs")}
        other = {"eeg": "fnirs", "fnirs": "eeg"}
        t = {k: m.product_centre[k](m.decoders[k](m.head_u[k](h[k])) - m.centre_fit[k](zr[other[k]]))
             for k in ("eeg", "fnirs")}
        ref = m.head_s(m.product_norm(m.product["eeg"](t["eeg"]) * m.product["fnirs"](t["fnirs"])))
        assert torch.allclose(m.fuse(x), ref, atol=1e-6)
        # the EEG's centring does not read the EEG's own Z_R: changing Head_R_eeg moves only the fNIRS input
        before = m._decoded_inputs(h)
        m.head_r["eeg"][-1].weight.add_(1.0)
        after = m._decoded_inputs(h)
        assert torch.allclose(after["eeg"], before["eeg"]) and not torch.allclose(after["fnirs"], before["fnirs"])
    zero = dict.fromkeys(ONLY_S, 0.0)
    tr = build_method("rus", SPEC, {**cfg, "weights": zero}, ENC)
    out = tr.loss(_batch())
    assert float(out.terms["L_centre"]) > 0 and torch.allclose(out.loss, out.terms["L_centre"])
    out.loss.backward()
    grads = {n: p.grad for n, p in tr.named_parameters()}
    assert _moved(grads, ("centre_fit",))
    assert not _moved(grads, ("decoders", "head_u", "head_r", "tokenizers", "temporal", "product", "head_s"))


def test_cluster_centring_standardizes_by_the_nearest_prototype_of_z_r():
    import numpy as np

    cfg = {**SMALL, "decoded_centre": "cluster"}
    m = build_method("rus", SPEC, cfg, ENC)
    assert not bool(m.centre_ready) and not hasattr(m, "centre_fit")
    x = _batch(4)
    m.eval()
    with torch.no_grad():  # untrained: no prototypes yet, the decoded targets enter as they are (then the BatchNorm)
        h = m.hidden(x)
        t = {k: m.decoders[k](m.head_u[k](h[k])) for k in ("eeg", "fnirs")}
        assert torch.allclose(m._decoded_inputs(h)["eeg"], m.product_centre["eeg"](t["eeg"]), atol=1e-6)
    m.train()
    out = m.loss(_batch())  # one training step fills the prototypes and the per-cluster statistics
    assert "L_centre" not in out.terms and bool(m.centre_ready)
    assert torch.isfinite(out.loss)
    proto = m.centre_proto.clone()
    m.eval()
    with torch.no_grad():
        h = m.hidden(x)
        zr = torch.cat([m.head_r[k](h[k]) for k in ("eeg", "fnirs")], 1).double().numpy()
        lab = ((zr[:, None, :] - proto.double().numpy()[None]) ** 2).sum(-1).argmin(1)
        c = m._decoded_inputs(h)
        for k in ("eeg", "fnirs"):
            tk = m.decoders[k](m.head_u[k](h[k])).double().numpy()
            mu = getattr(m, f"centre_mean_{k}").double().numpy()[lab]
            var = getattr(m, f"centre_var_{k}").double().numpy()[lab]
            ref = m.product_centre[k](torch.tensor((tk - mu) / np.sqrt(var + 1e-5), dtype=torch.float32))
            assert torch.allclose(c[k], ref, atol=1e-5)
        m.fuse(x)
    assert torch.equal(m.centre_proto, proto)  # evaluation leaves the running statistics alone


def test_two_means_separates_two_groups():
    from mmib.methods.rus_decoded import _two_means

    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(20, 3, generator=g) * 0.1, torch.randn(12, 3, generator=g) * 0.1 + 5.0])
    c = _two_means(x)
    got = sorted(c[:, 0].tolist())
    assert abs(got[0] - float(x[:20, 0].mean())) < 1e-5 and abs(got[1] - float(x[20:, 0].mean())) < 1e-5


def test_decoded_needs_the_product_and_both_targets():
    with pytest.raises(MMIBError, match="decoded"):
        build_method("rus", SPEC, {**SMALL, "interaction": "none"}, ENC)
    with pytest.raises(MMIBError, match="decoded"):
        build_method("rus", SPEC, {**SMALL, "targets": {"fnirs": "none"}}, ENC)
    with pytest.raises(MMIBError, match="decoded_centre"):
        build_method("rus", SPEC, {**SMALL, "decoded_centre": "mean"}, ENC)


def test_linear_decoded_head_makes_z_s_a_bilinear_form():
    m = build_method("rus", SPEC, {**SMALL, "decoded_head": "linear"}, ENC).eval()
    x = _batch(4)
    with torch.no_grad():
        h = m.hidden(x)
        c = m._decoded_inputs(h)
        ref = (m.product["eeg"](c["eeg"]) * m.product["fnirs"](c["fnirs"])) @ m.head_s.weight.T
        assert torch.allclose(m.fuse(x), ref, atol=1e-6)
        # bilinear: scaling one modality's centred input scales Z_S by the same factor
        z2 = (m.product["eeg"](2 * c["eeg"]) * m.product["fnirs"](c["fnirs"])) @ m.head_s.weight.T
        assert torch.allclose(z2, 2 * ref, atol=1e-5)
    assert isinstance(m.head_s, torch.nn.Linear) and m.head_s.bias is None
    with pytest.raises(MMIBError, match="decoded_head"):
        build_method("rus", SPEC, {**SMALL, "decoded_head": "deep"}, ENC)
