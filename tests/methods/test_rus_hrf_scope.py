"""``rus``: the HRF-delay augmentation's scope (spec D.5.5): by default only the second view, which feeds L_S alone,
is shifted; ``hrf_delay_scope: both`` shifts both views."""

import pytest
import torch

from mmib.data.spec import DatasetSpec, ModalitySpec
from mmib.errors import MMIBError
from mmib.methods.registry import build_method

FNIRS_CH = tuple(f"S{i}_D{i} {c}" for i in range(1, 4) for c in ("hbo", "hbr"))
SPEC = DatasetSpec("toy", (ModalitySpec("eeg", "signal", (4, 256), rate=128.0),
                           ModalitySpec("fnirs", "signal", (6, 60), rate=10.0, channels=FNIRS_CH)),
                   task="classification", n_classes=2)
# no other augmentation: any difference between the views comes from the delay
CFG = {"hidden_dim": 16, "component_dim": 8, "head_hidden": 16, "n_heads": 2, "augment_seed": 0,
       "time_start": {"eeg": -0.5, "fnirs": -2.0},
       "augment": {"eeg": [], "fnirs": []}}
ENC = {"signal": {"channels": [8, 8], "kernel_size": 5, "pool": 4}}


def _x(n=6):
    t = torch.arange(60, dtype=torch.float32)
    return {"eeg": torch.randn(n, 4, 256), "fnirs": torch.sin(t / 3.0).expand(n, 6, 60).clone()}


def test_default_scope_shifts_the_s_view_only():
    m = build_method("rus", SPEC, {**CFG, "hrf_delay_s": 3.0}, ENC)
    assert m.hrf_delay_scope == "s_view"
    x = _x()
    v1 = m.augment(x)
    assert torch.equal(v1["fnirs"], x["fnirs"]) and torch.equal(v1["eeg"], x["eeg"])
    shifted = [not torch.equal(m.augment(x, s_view=True)["fnirs"], x["fnirs"]) for _ in range(5)]
    assert any(shifted)
    assert torch.equal(m.augment(x, s_view=True)["eeg"], x["eeg"])  # EEG is never delayed


def test_scope_both_shifts_both_views_and_zero_delay_shifts_none():
    m = build_method("rus", SPEC, {**CFG, "hrf_delay_s": 3.0, "hrf_delay_scope": "both"}, ENC)
    x = _x()
    assert any(not torch.equal(m.augment(x)["fnirs"], x["fnirs"]) for _ in range(5))
    off = build_method("rus", SPEC, CFG, ENC)
    assert all(torch.equal(off.augment(x, s_view=s)["fnirs"], x["fnirs"]) for s in (False, True))


def test_loss_feeds_the_delayed_view_to_l_s_only(monkeypatch):
    m = build_method("rus", SPEC, {**CFG, "hrf_delay_s": 3.0}, ENC)
    seen = []
    tokens = m._tokens  # both views are tokenized here

    def spy(x, mods):
        seen.append(x["fnirs"].clone())
        return tokens(x, mods)

    monkeypatch.setattr(m, "_tokens", spy)
    x = _x()
    out = m.loss({"x": x})
    assert torch.isfinite(out.loss)
    assert len(seen) == 2 and torch.equal(seen[0], x["fnirs"])  # the view of L_R, L_U, L_orth: unshifted


def test_unknown_scope_is_a_named_error():
    with pytest.raises(MMIBError, match="unknown method.hrf_delay_scope 'second'; valid: both, s_view"):
        build_method("rus", SPEC, {**CFG, "hrf_delay_s": 1.0, "hrf_delay_scope": "second"}, ENC)
