"""``rus`` with ``synergy: interaction`` (issue 20): Z_S is the functional-ANOVA interaction term of the synergy
path g(x_eeg, x_fnirs); in training against K in-batch derangements, at evaluation against a reference bank of
training inputs saved in the checkpoint. The objective-level estimators are in
``tests/objectives/test_rus_interaction.py``."""

import pytest
import torch

from mmib.data.spec import DatasetSpec, ModalitySpec
from mmib.errors import MMIBError
from mmib.methods.registry import build_method, method_from_checkpoint

FNIRS_CH = tuple(f"S{i}_D{i} {c}" for i in range(1, 4) for c in ("hbo", "hbr"))
SPEC = DatasetSpec("toy", (ModalitySpec("eeg", "signal", (4, 256), rate=128.0),
                           ModalitySpec("fnirs", "signal", (6, 60), rate=10.0, channels=FNIRS_CH)))
SMALL = {"hidden_dim": 16, "component_dim": 8, "head_hidden": 16, "n_heads": 2, "augment_seed": 0,
         "time_start": {"eeg": -0.5, "fnirs": -2.0}, "synergy": "interaction"}
ENC = {"signal": {"channels": [8, 8], "kernel_size": 5, "pool": 4}}


def _batch(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"x": {"eeg": torch.randn(n, 4, 256, generator=g), "fnirs": torch.randn(n, 6, 60, generator=g)}}


def _trained(n_bank=6, **cfg):
    """A method whose bank holds the batch _batch(n_bank) (one training step's loss, no optimizer step)."""
    torch.manual_seed(0)
    m = build_method("rus", SPEC, {**SMALL, "synergy_bank": n_bank, **cfg}, ENC).train()
    m.loss(_batch(n_bank))
    return m.eval()


def _pairs(batch, ia, ib):
    return {"x": {"eeg": batch["x"]["eeg"][ia], "fnirs": batch["x"]["fnirs"][ib]}}


def test_bilinear_g_gives_the_centered_product_against_the_bank():
    m = _trained()
    w = torch.randn(8, 16, 16, generator=torch.Generator().manual_seed(1))
    m._synergy = lambda toks, h: torch.einsum("ip,cpq,iq->ic", h["eeg"], w, h["fnirs"])  # a bilinear g
    q = _batch(5, seed=7)
    with torch.no_grad():
        s = m.fuse(q)
        hq = m.hidden(q)
        hb = m.hidden({"x": {k: getattr(m, f"syn_bank_{k}") for k in ("eeg", "fnirs")}})
    closed = torch.einsum("ip,cpq,iq->ic", hq["eeg"] - hb["eeg"].mean(0), w, hq["fnirs"] - hb["fnirs"].mean(0))
    torch.testing.assert_close(s, closed, rtol=1e-4, atol=1e-4)


def test_zero_partner_mean_over_a_full_reference():
    """With the bank = the samples themselves, S(e_i, f_j) of the real fusion averages to 0 over j for every i and
    over i for every j (the bank's all-pairs table is exactly double-centred)."""
    n = 6
    m = _trained(n).double()  # float64: an untrained fusion is nearly additive, its interaction is small
    b = _batch(n)
    assert torch.equal(m.syn_bank_eeg, b["x"]["eeg"].double()) and int(m.syn_bank_count) == n
    b = {"x": {k: v.double() for k, v in b["x"].items()}}
    ia, ib = torch.arange(n).repeat_interleave(n), torch.arange(n).repeat(n)
    with torch.no_grad():
        s = m.fuse(_pairs(b, ia, ib)).reshape(n, n, -1)  # s[i, j] = S(eeg_i, fnirs_j)
        toks = m._tokens(b["x"], m.mods)
        plain = m._synergy(toks, {k: m._hidden(toks, k) for k in m.mods})
    scale = float(s.abs().mean())
    assert scale > 1e-5
    assert float(s.mean(1).abs().max()) < 1e-9 * scale and float(s.mean(0).abs().max()) < 1e-9 * scale
    # and the diagonal is the interaction, not the plain fusion output
    assert float((s.diagonal(0, 0, 1).T - plain).abs().mean()) > 10 * scale


def test_eval_value_does_not_depend_on_the_batch():
    m = _trained()
    q = _batch(7, seed=3)
    with torch.no_grad():
        s = m.fuse(q)
        alone = torch.cat([m.fuse({"x": {k: v[i:i + 1] for k, v in q["x"].items()}}) for i in range(7)])
        shuffled = m.fuse({"x": {k: v.flip(0) for k, v in q["x"].items()}}).flip(0)
        comp = m.components(q)
    torch.testing.assert_close(alone, s, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(shuffled, s, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(comp["S"], s, rtol=1e-5, atol=1e-5)
    # embed and hidden need no bank and no S
    fresh = build_method("rus", SPEC, SMALL, ENC).eval()
    assert set(fresh.embed(q)) == {"eeg", "fnirs"} and set(fresh.components(q, ["eeg"])) == {"R_eeg", "U_eeg"}
    with pytest.raises(MMIBError, match="bank is empty: train the model first"):
        fresh.fuse(q)


def test_option_reaches_the_loss_and_the_bank_is_a_ring():
    k, n = 3, 5
    m = build_method("rus", SPEC, {**SMALL, "synergy_partners": k, "synergy_bank": 8}, ENC).train()
    rows = []
    m.head_s.register_forward_hook(lambda mod, inp, out: rows.append(out.shape[0]))
    b = _batch(n)
    out = m.loss(b)
    assert sum(rows) == 2 * (1 + k) * n  # per view: the batch itself and K mismatched passes
    assert "L_syn" not in out.terms and torch.isfinite(out.loss)
    out.loss.backward()
    assert m.head_s[0].weight.grad is not None and m.fusion.cls.grad is not None
    assert (int(m.syn_bank_count), int(m.syn_bank_next)) == (5, 5)
    b2 = _batch(n, seed=1)
    m.loss(b2)  # 3 written at the end, 2 wrapped to the front
    assert (int(m.syn_bank_count), int(m.syn_bank_next)) == (8, 2)
    torch.testing.assert_close(m.syn_bank_fnirs[5:], b2["x"]["fnirs"][:3])
    torch.testing.assert_close(m.syn_bank_fnirs[:2], b2["x"]["fnirs"][3:])
    m.eval()
    m.loss(_batch(n, seed=2))  # a validation loss does not write the bank
    assert int(m.syn_bank_next) == 2
    # the two views draw their own partners: the S estimates of identical views differ (different derangements)
    m.train()
    views = []
    m.augment = lambda x, s_view=False: dict(x)
    orig = m._interaction_in_batch
    m._interaction_in_batch = lambda t, h: views.append(orig(t, h)) or views[-1]
    m.loss(b)
    assert len(views) == 2 and not torch.allclose(views[0], views[1])
    lit = build_method("rus", SPEC, {**SMALL, "synergy": "literal"}, ENC)
    assert not hasattr(lit, "syn_bank_eeg")


def test_bank_is_saved_and_loaded_with_the_checkpoint(tmp_path):
    m = _trained(6)
    q = _batch(4, seed=5)
    with torch.no_grad():
        s = m.fuse(q)
    ckpt = {"hyper_parameters": dict(m.hparams), "state_dict": m.state_dict()}
    torch.save(ckpt, tmp_path / "x.ckpt")
    back = method_from_checkpoint(torch.load(tmp_path / "x.ckpt", weights_only=True), "x.ckpt")
    assert int(back.syn_bank_count) == 6 and torch.equal(back.syn_bank_eeg, m.syn_bank_eeg)
    with torch.no_grad():
        torch.testing.assert_close(back.fuse(q), s)


@pytest.mark.parametrize("cfg,match", [({"synergy": "anova"}, "synergy must be one of"),
                                       ({"synergy_partners": 0}, "synergy_partners must be an integer >= 1"),
                                       ({"synergy_bank": 1}, "synergy_bank must be an integer >= 2")])
def test_bad_options_are_clear_errors(cfg, match):
    with pytest.raises(MMIBError, match=match):
        build_method("rus", SPEC, {**SMALL, **cfg}, ENC)


def test_unique_source_reads_the_detached_unique_components():
    m = build_method("rus", SPEC, {**SMALL, "synergy_source": "unique", "synergy_bank": 6}, ENC)
    assert isinstance(m.fusion, torch.nn.Identity) and m.head_s[0].in_features == 2 * 8 + 16
    seen = {}
    m.head_s.register_forward_hook(lambda mod, inp, out: seen.update(inp=inp[0]))
    b = _batch(6)
    with torch.no_grad():
        toks = m._tokens(b["x"], m.mods)
        h = {k: m._hidden(toks, k) for k in m.mods}
        m._synergy(toks, h)
        u = {k: m.head_u[k](h[k]) for k in m.mods}
    prod = m.product_norm(m.product["eeg"](u["eeg"]) * m.product["fnirs"](u["fnirs"]))
    torch.testing.assert_close(seen["inp"], torch.cat([u["eeg"], u["fnirs"], prod], 1))
    # L_S alone: no gradient into the unique heads or the encoders through the S path
    m.objective.lambda_r = m.objective.lambda_u = m.objective.lambda_orth = 0.0
    m.train().loss(b).loss.backward()
    assert m.head_s[0].weight.grad.abs().sum() > 0 and m.product["eeg"].weight.grad.abs().sum() > 0
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in m.head_u.parameters())
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in m.tokenizers.parameters())
    with pytest.raises(MMIBError, match="synergy_source must be one of"):
        build_method("rus", SPEC, {**SMALL, "synergy_source": "tokens"}, ENC)
