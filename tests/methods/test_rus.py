"""``rus``: structure (each head sees only its modality, S sees both), the loss wiring, the augmentation pipelines it
builds, errors, and (slow) the D.5 claims on a small simulation. (Its reconstruction targets and physiological
augmentations are tested against numpy references in tests/data/physio/test_targets.py and test_augment.py.)"""

import pytest
import torch

from mmib.config import compose_config, to_container
from mmib.data.spec import DatasetSpec, ModalitySpec
from mmib.errors import MMIBError
from mmib.methods.registry import build_method

FNIRS_CH = tuple(f"S{i}_D{i} {c}" for i in range(1, 4) for c in ("hbo", "hbr"))
SPEC = DatasetSpec("toy", (ModalitySpec("eeg", "signal", (4, 256), rate=128.0),
                           ModalitySpec("fnirs", "signal", (6, 60), rate=10.0, channels=FNIRS_CH)),
                   task="classification", n_classes=2)
SMALL = {"hidden_dim": 16, "component_dim": 8, "head_hidden": 16, "n_heads": 2, "augment_seed": 0,
         "time_start": {"eeg": -0.5, "fnirs": -2.0}}
ENC = {"signal": {"channels": [8, 8], "kernel_size": 5, "pool": 4}}


def _method(spec=SPEC, **cfg):
    return build_method("rus", spec, {**SMALL, **cfg}, ENC)


def _batch(n=8):
    return {"x": {"eeg": torch.randn(n, 4, 256), "fnirs": torch.randn(n, 6, 60)}}


@pytest.mark.parametrize("cfg", [{}, {"temporal": "gru", "fusion": "concat"}])
def test_heads_see_only_their_modality_and_s_sees_both(cfg):
    m = _method(**cfg).eval()
    b = _batch()
    b_f = {"x": {**b["x"], "fnirs": torch.randn_like(b["x"]["fnirs"])}}
    b_e = {"x": {**b["x"], "eeg": torch.randn_like(b["x"]["eeg"])}}
    with torch.no_grad():
        c, cf, ce = m.components(b), m.components(b_f), m.components(b_e)
    assert list(c) == ["R_eeg", "R_fnirs", "U_eeg", "U_fnirs", "S"]
    for k in ("R_eeg", "U_eeg"):
        torch.testing.assert_close(c[k], cf[k], rtol=0, atol=0)
        assert not torch.allclose(c[k], ce[k])
    for k in ("R_fnirs", "U_fnirs"):
        torch.testing.assert_close(c[k], ce[k], rtol=0, atol=0)
        assert not torch.allclose(c[k], cf[k])
    assert not torch.allclose(c["S"], cf["S"]) and not torch.allclose(c["S"], ce["S"])
    with torch.no_grad():
        torch.testing.assert_close(m.fuse(b), c["S"])
        emb = m.embed(b, space="embedding")
        torch.testing.assert_close(emb["eeg"], c["R_eeg"])
        rep = m.embed(b, ["fnirs"])
        assert set(rep) == {"fnirs"} and rep["fnirs"].shape == (8, 16)
        only = m.components(b, ["eeg"])
        assert set(only) == {"R_eeg", "U_eeg"}
        torch.testing.assert_close(only["R_eeg"], c["R_eeg"])
        assert m.score({"eeg": emb["eeg"]}, emb["fnirs"]).shape == (8, 8)
    with pytest.raises(MMIBError, match="needs both modalities"):
        m.fuse(b, ["eeg"])


@pytest.mark.parametrize("cfg", [{}, {"cross_min": "grl"}, {"cross_min": "none", "fusion": "concat"},
                                 {"neg_sim_form": "signed", "temporal": "gru", "hrf_delay_s": 1.0},
                                 {"component_dim": 32}])
def test_loss_terms_are_finite_and_reach_every_part(cfg):
    m = _method(**cfg).train()
    out = m.loss(_batch(16))
    for k in ("L_R", "L_U", "L_S", "L_orth", "L_U_recon_eeg", "L_U_recon_fnirs"):
        assert torch.isfinite(out.terms[k]), k
    assert ("L_U_cross_eeg" in out.terms) == (cfg.get("cross_min", "neg_sim") != "none")
    out.loss.backward()
    for part in ("tokenizers", "temporal", "head_r", "head_u", "head_s", "decoders"):
        grads = [p.grad for p in getattr(m, part).parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), part


def test_grl_reverses_the_adversary_gradient_into_the_unique_head():
    torch.manual_seed(1)
    m = _method(cross_min="grl", weights={"R": 0, "U": 1, "S": 0, "orth": 0, "cross": 1}, grl_coeff=1.0).train()
    m.pipelines = {k: (lambda x, g=None, lengths=None: x) for k in m.pipelines}  # no augmentation
    b = _batch(16)
    # reference: the adversary term alone, without reversal, differentiated w.r.t. the EEG unique head
    m.zero_grad()
    m.reversal.coeff = -1.0  # -(-1) = +1: plain gradient
    o = m._forward(b["x"], m.mods)
    from mmib.data.physio.targets import reconstruction_targets
    from mmib.objectives.base import l2_normalize

    t_f = reconstruction_targets("hemodynamic", b["x"]["fnirs"], SPEC.modality("fnirs"))
    adv = (m.adversaries["eeg"](m.reversal(l2_normalize(o["U_eeg"]))) - t_f).pow(2).mean()
    adv.backward()
    plain = [p.grad.clone() for p in m.head_u["eeg"].parameters()]
    adv_plain = [p.grad.clone() for p in m.adversaries["eeg"].parameters()]
    m.zero_grad()
    m.reversal.coeff = 1.0
    o = m._forward(b["x"], m.mods)
    adv = (m.adversaries["eeg"](m.reversal(l2_normalize(o["U_eeg"]))) - t_f).pow(2).mean()
    adv.backward()
    for g, p in zip(plain, m.head_u["eeg"].parameters()):
        torch.testing.assert_close(p.grad, -g)
    for g, p in zip(adv_plain, m.adversaries["eeg"].parameters()):
        torch.testing.assert_close(p.grad, g)  # the adversary itself descends


def test_hrf_delay_is_off_by_default():
    names = repr(_method().pipelines["fnirs"])
    assert "HRFDelay" not in names and "HRFAmplitude" in names
    assert "BandSNR" in repr(_method().pipelines["eeg"])
    on = _method(hrf_delay_s=2.0)  # default scope: the second (L_S) view alone
    assert "HRFDelay" in repr(on.s_view_pipelines["fnirs"]) and "eeg" not in on.s_view_pipelines
    assert "HRFDelay" not in repr(on.pipelines["fnirs"])
    both = _method(hrf_delay_s=2.0, hrf_delay_scope="both")
    assert "HRFDelay" in repr(both.pipelines["fnirs"]) and "HRFDelay" not in repr(both.pipelines["eeg"])


def test_packaged_config_builds():
    cfg = to_container(compose_config(["method=rus", "data=eeg_fnirs_sim"]))
    # the simulator's epoch windows: EEG -0.5…4 s at 128 Hz, fNIRS -2…18 s at 10 Hz
    spec = DatasetSpec("sim", (ModalitySpec("eeg", "signal", (4, 577), rate=128.0),
                               ModalitySpec("fnirs", "signal", (6, 201), rate=10.0, channels=FNIRS_CH)))
    m = build_method("rus", spec, cfg["method"], ENC)
    assert m.temporal_kind == "transformer" and m.cross_min == "neg_sim" and m.fusion_kind == "cross_attention"
    assert m.time_axes == {"eeg": (-0.5, 128.0), "fnirs": (-2.0, 10.0)}
    # the toy spec's windows are not the pipelines' defaults: the epoch start must be given
    with pytest.raises(MMIBError, match="method.time_start.eeg"):
        build_method("rus", SPEC, cfg["method"], ENC)


def test_bad_input_gives_clear_errors():
    three = DatasetSpec("t3", SPEC.modalities + (ModalitySpec("ecg", "signal", (1, 64), rate=64.0),))
    with pytest.raises(MMIBError, match="exactly 2"):
        build_method("rus", three, SMALL, ENC)
    img = DatasetSpec("ti", (SPEC.modalities[0], ModalitySpec("fnirs", "image", (1, 8, 8))))
    with pytest.raises(MMIBError, match="rus takes signals"):
        build_method("rus", img, SMALL, ENC)
    other = DatasetSpec("to", (ModalitySpec("a", "signal", (2, 64), rate=64.0), SPEC.modalities[1]))
    with pytest.raises(MMIBError, match="no default reconstruction target for modality 'a'"):
        build_method("rus", other, SMALL, ENC)
    norate = DatasetSpec("tn", (ModalitySpec("eeg", "signal", (2, 64)), SPEC.modalities[1]))
    with pytest.raises(MMIBError, match="sampling rate"):
        build_method("rus", norate, SMALL, ENC)
    vec = DatasetSpec("tv", (ModalitySpec("eeg", "vector", (10,)), ModalitySpec("fnirs", "vector", (6,))))
    with pytest.raises(MMIBError, match="needs a signal"):
        build_method("rus", vec, {**SMALL, "targets": {"eeg": "band_power"}}, ENC)
    mv = build_method("rus", vec, SMALL, {"vector": {"hidden": [8]}})  # vectors: reconstruct the input
    assert mv.targets == {"eeg": "input", "fnirs": "input"}
    assert torch.isfinite(mv.loss({"x": {"eeg": torch.randn(4, 10), "fnirs": torch.randn(4, 6)}}).loss)
    for bad, match in (({"cross_min": "kl"}, "cross_min"), ({"temporal": "lstm"}, "temporal"),
                       ({"weights": {"X": 1}}, "unknown option of method 'rus' 'weights.X'"), ({"targets": {"eeg": "psd"}}, "reconstruction target"),
                       ({"augment": {"eeg": [{"name": "warp"}]}}, "augmentation"), ({"hrf_delay_s": -1}, "hrf_delay_s"),
                       ({"augment": {"emg": []}}, "modality"), ({"weights": {"orth": -1}}, "lambda_orth")):
        with pytest.raises((MMIBError, ValueError), match=match):
            _method(**bad)
    m = _method()
    with pytest.raises(MMIBError, match="at least 2 samples"):
        m.loss(_batch(1))
    b = _batch(4)
    b["mask"] = {"eeg": torch.tensor([True, False, True, True]), "fnirs": torch.ones(4, dtype=torch.bool)}
    with pytest.raises(MMIBError, match="lack 'eeg'"):
        m.loss(b)
    with pytest.raises(MMIBError, match="per-sample shape"):
        m.components({"x": {"eeg": torch.randn(2, 4, 100), "fnirs": torch.randn(2, 6, 60)}})


@pytest.fixture(scope="module")
def small_simulation_probe(tmp_path_factory):
    """rus trained 15 epochs on 6 simulated subjects × 30 trials (seed 1), split by subject (4 / 1 / 2 — the
    fractions round to whole subjects); returns ``probe(component, latent, task_only)``: the test-subject balanced
    accuracy of a linear probe trained on the train subjects (early stopping on val)."""
    from mmib.data.registry import build_dataset
    from mmib.engine import train
    from mmib.eval.probe import ProbeConfig, train_probe

    ds = build_dataset("eeg_fnirs_sim", n_subjects=6, trials_per_subject=30, seed=1)
    cfg = to_container(compose_config([
        "method=rus", "data=eeg_fnirs_sim", "trainer.max_epochs=15", "trainer.enable_progress_bar=false",
        f"run_dir={tmp_path_factory.mktemp('rus_d5')}", "data.batch_size=32", "data.test_fraction=0.34",
        "data.val_fraction=0.17", "encoder.signal.channels=[16,32,32]", "encoder.signal.pool=4",
        "+encoder.modalities.fnirs.pool=2"]))  # fmt: skip
    res = train(cfg, dataset=ds)
    m, dm = res.method, res.datamodule
    feats, lat = {}, {}
    for s in ("train", "val", "test"):
        b = dm.dataset.get_batch(dm.indices[s])
        with torch.no_grad():
            feats[s] = {k: v.numpy() for k, v in m.components(b).items()}
        lat[s] = {k: v.numpy() for k, v in b["latents"].items()}

    def probe(comp, latent, task_only=False):
        # A (and G, tau, ...) are only expressed on task trials (e = 1): probe them there
        sel = {s: lat[s]["e"] == 1 if task_only else slice(None) for s in feats}
        args = [a for s in ("train", "val", "test") for a in (feats[s][comp][sel[s]], lat[s][latent][sel[s]])]
        return train_probe(*args, "classification", 2, ProbeConfig(kind="linear"))["balanced_accuracy"]

    return probe


@pytest.mark.slow
def test_d5_claims_on_a_small_simulation(small_simulation_probe):
    """Spec D.5.1–2 on 6 simulated subjects, the claims that hold at this scale (chance 0.5; measured with these
    settings on simulation seeds 1 / 2): Z_R_fnirs detects the event (0.90 / 0.85), Z_U_eeg decodes the EEG state k
    (1.0 / 1.0), Z_U_fnirs decodes the metabolic amplitude A on task trials (0.97 / 0.90), and the unique heads do
    not decode the other modality's factor: U_eeg → A on task trials 0.59 / 0.61, U_fnirs → k 0.54 / 0.61."""
    probe = small_simulation_probe
    assert probe("R_fnirs", "e") > 0.7
    assert probe("U_eeg", "k") > 0.7
    assert probe("U_fnirs", "A", task_only=True) > 0.65
    assert abs(probe("U_eeg", "A", task_only=True) - 0.5) < 0.15
    assert abs(probe("U_fnirs", "k") - 0.5) < 0.15


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason=(
    "at 6 subjects × 30 trials and 15 epochs Z_R_eeg does not detect the event e: balanced accuracy 0.48 / 0.57 on "
    "simulation seeds 1 / 2 (0.55, 0.48, 0.57, 0.55 on seeds 0-3 in an earlier audit), while Z_R_eeg → k is 1.0 "
    "(the EEG redundancy head carries the EEG state). With the filterbank EEG front end (default since 2026-12-07) "
    "it is 0.60 / 0.52 and H_eeg itself decodes e at 0.57 / 0.49 at this scale, while at the suite's 12 subjects "
    "× 40 trials and 30 epochs Z_R_eeg → e reaches 85.9 ± 12.0 % and H_eeg → e 87.0 % over 3 seeds "
    "(docs/results/eeg-fnirs.md): at this scale even H_eeg does not hold the event."))  # fmt: skip
def test_d5_r_eeg_detects_the_event_on_a_small_simulation(small_simulation_probe):
    """Spec D.5.1: the EEG redundancy head detects the activation event (known to fail at this scale)."""
    assert small_simulation_probe("R_eeg", "e") > 0.7
