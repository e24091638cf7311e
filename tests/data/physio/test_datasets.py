"""Registered physiological data sets and the pyphysio files."""

import numpy as np
import pytest

from mmib.data.dataset import DataValidationError
from mmib.data.registry import build_dataset, dataset_names
from mmib.errors import UnknownNameError


def test_registered():
    assert {"eeg_fnirs_sim", "cardio_pyphysio", "cardio_sim", "fnirs_pyphysio"} <= set(dataset_names())


def test_eeg_fnirs_sim_signal_and_features():
    ds = build_dataset("eeg_fnirs_sim", n_subjects=2, trials_per_subject=12, seed=1)
    eeg, fnirs = ds.spec.modality("eeg"), ds.spec.modality("fnirs")
    assert eeg.kind == fnirs.kind == "signal"
    assert eeg.shape == (16, 577) and eeg.rate == 128.0 and eeg.channels[0] == "Fp1"
    assert fnirs.shape == (16, 201) and fnirs.channels[:2] == ("S1_D1 hbo", "S1_D1 hbr")
    assert ds.n == 24 and list(np.unique(ds.groups)) == [0, 1]
    assert ds.spec.task == "classification" and ds.spec.n_classes == 2
    np.testing.assert_array_equal(ds.y.numpy(), ds.latents["e"].numpy())
    assert set(ds.spec.latents) == {"e", "k", "A", "G", "tau", "efficiency", "synergy", "t0"}
    feats = build_dataset("eeg_fnirs_sim", n_subjects=2, trials_per_subject=12, seed=1, representation="features",
                          target="tau")  # fmt: skip
    assert feats.spec.modality("eeg").shape == (16 * 13,) and feats.spec.modality("fnirs").shape == (8 * 2 * 3,)
    assert feats.spec.task == "regression"
    np.testing.assert_allclose(feats.y.numpy(), ds.latents["tau"].numpy(), rtol=1e-6)


def test_eeg_fnirs_sim_bad_options():
    with pytest.raises(DataValidationError, match="target"):
        build_dataset("eeg_fnirs_sim", target="nope")
    with pytest.raises(DataValidationError, match="representation"):
        build_dataset("eeg_fnirs_sim", representation="raw")
    with pytest.raises(UnknownNameError, match="unknown eeg_fnirs_sim simulator option 'no_such_field'"):
        build_dataset("eeg_fnirs_sim", simulator={"no_such_field": 1})


def test_cardio_sim_shares_rates():
    ds = build_dataset("cardio_sim", n_subjects=2, windows_per_subject=6, ecg_method="simple", include_eda=True)
    assert ds.spec.modality_names == ("resp", "ecg", "bvp", "eda") and ds.spec.task == "none"
    assert ds.spec.modality("ecg").shape == (1, 1024) and ds.spec.modality("resp").shape == (1, 128)
    import neurokit2 as nk

    # the heart rate measured on the simulated ECG follows the latent heart rate
    ecg = ds.x["ecg"].numpy()[:, 0]
    measured = []
    for w in ecg:
        peaks = nk.ecg_peaks(w, sampling_rate=128)[1]["ECG_R_Peaks"]
        measured.append(60.0 * 128 / np.median(np.diff(peaks)))
    assert np.corrcoef(measured, ds.latents["heart_rate"].numpy())[0, 1] > 0.9
    with pytest.raises(Exception, match="whole number"):
        build_dataset("cardio_sim", ecg_rate=100.5)


def _pyphysio():
    from mmib.data.physio.io import pyphysio_test_data

    if pyphysio_test_data() is None:
        pytest.skip("pyphysio is not installed")


def test_cardio_pyphysio_windows_stay_in_blocks():
    _pyphysio()
    ds = build_dataset("cardio_pyphysio")
    assert ds.spec.modality_names == ("resp", "ecg", "bvp")
    assert ds.n == 6 * 25 and np.bincount(ds.groups).tolist() == [25] * 6
    hr, br = ds.latents["heart_rate"].numpy(), ds.latents["breathing_rate"].numpy()
    assert 55 < np.median(hr) < 85 and 10 < np.median(br) < 20  # a resting adult at 2048 Hz


def test_pyphysio_fnirs_through_the_mne_path():
    _pyphysio()
    from mmib.data.physio.io import read_pyphysio_fnirs
    from mmib.data.physio.preprocess import FNIRSPipeline, fnirs_epochs

    raw = read_pyphysio_fnirs()
    assert len(raw.ch_names) == 52 and abs(raw.info["sfreq"] - 10.172) < 1e-3
    assert raw.ch_names[:2] == ["S1_D1 760", "S1_D1 850"] and len(raw.annotations) == 31
    ep = fnirs_epochs(raw, FNIRSPipeline(tmin=-2.0, tmax=15.0, short_channel_regression=True),
                      conditions=["tapping"], source="pyphysio")  # fmt: skip
    assert len(ep) == 31
    data = ep.get_data(copy=True) * 1e6
    win = (ep.times >= 4) & (ep.times <= 12)
    types = np.array(ep.get_channel_types())
    hbo = data[:, types == "hbo"][:, :, win].mean(axis=(1, 2))
    hbr = data[:, types == "hbr"][:, :, win].mean(axis=(1, 2))
    t_hbo = hbo.mean() / (hbo.std(ddof=1) / np.sqrt(len(hbo)))
    t_hbr = hbr.mean() / (hbr.std(ddof=1) / np.sqrt(len(hbr)))
    # a tapping-locked haemodynamic change with HbO and HbR of opposite signs (on this recording: HbO falls)
    assert abs(t_hbo) > 3 and np.sign(t_hbo) != np.sign(t_hbr)


def test_fnirs_pyphysio_dataset():
    _pyphysio()
    ds = build_dataset("fnirs_pyphysio", representation="features")
    assert ds.spec.modality_names == ("fnirs",) and ds.spec.modality("fnirs").kind == "vector"
    assert np.bincount(ds.y.numpy()).tolist()[1] == 31


def test_network_is_disabled_for_physio_tests():
    """tests/data/conftest.py covers this folder too: the packaged pyphysio loaders run with the network off."""
    import socket

    with pytest.raises(RuntimeError, match="network access attempted during a data test"):
        socket.create_connection(("example.org", 80), timeout=1)
    with pytest.raises(RuntimeError, match="network access attempted"):
        socket.getaddrinfo("example.org", 80)


def test_cardio_target_makes_a_regression_task_and_is_checked():
    kw = dict(n_subjects=2, windows_per_subject=6, ecg_method="simple")
    ds = build_dataset("cardio_sim", target="heart_rate", **kw)
    assert ds.spec.task == "regression" and ds.y is not None
    assert np.array_equal(ds.y.numpy(), ds.latents["heart_rate"].numpy())
    assert build_dataset("cardio_sim", **kw).y is None
    from mmib.errors import MMIBError

    with pytest.raises(MMIBError, match="unknown target of data set 'cardio_sim' 'hr'; valid: breathing_rate, heart_rate, none"):
        build_dataset("cardio_sim", target="hr", **kw)


def test_methods_train_on_cardio_sim_with_resp_ecg_to_bvp_retrieval(tmp_path):
    # a self-supervised alignment method (retrieval Resp+ECG -> BVP) and a supervised fusion method (heart rate)
    from mmib.config import compose_config, to_container
    from mmib.engine import train
    from mmib.eval.evaluate import evaluate

    small = ["trainer.max_epochs=1", "trainer.enable_progress_bar=false", "data.n_subjects=4",
             "data.windows_per_subject=8", "data.ecg_method=simple", "data.batch_size=8",
             "encoder.signal.channels=[8]", "encoder.signal.pool=4"]
    cfg = to_container(compose_config(["method=ova_ib", "data=cardio_sim", f"run_dir={tmp_path}", "name=a", *small]))
    res = train(cfg)
    out = evaluate(res.method, res.datamodule, [{"retrieval": {"directions": ["resp+ecg->bvp"]}}],
                   out_dir=tmp_path / "eval_a", progress=False)
    (row,) = out["protocols"]["retrieval"]["rows"]
    assert row["direction"] == "resp+ecg->bvp" and row["queries"] == ["resp", "ecg"] and row["candidate"] == "bvp"
    assert 0.0 <= row["metrics"]["R@1"] <= 1.0 and row["n_candidates"] == len(res.datamodule.indices["test"])
    cfg = to_container(compose_config(["method=concat", "data=cardio_sim", "data.target=heart_rate",
                                       f"run_dir={tmp_path}", "name=b", *small]))
    res = train(cfg)
    assert res.method.spec.task == "regression"
    assert np.isfinite(float(res.metrics.get("train/loss", res.metrics.get("train_loss", 0.0))))
