"""mmib.eval.probe.config: the probe settings (defaults per kind, checks, options from a protocol), the result's
dictionary, the feature checks and the temporary torch thread setting."""

import numpy as np
import pytest
import torch

from mmib.errors import MMIBError, UnknownNameError
from mmib.eval.probe.config import (
    FULL_BATCH_LINEAR_MAX_EPOCHS,
    FULL_BATCH_LINEAR_PATIENCE,
    FULL_BATCH_MLP_PATIENCE,
    PROBE_DESCRIPTIONS,
    PROBES,
    TASKS,
    ProbeConfig,
    ProbeResult,
    _check,
    torch_threads,
)


def test_learning_rate_default_depends_on_the_kind():
    assert ProbeConfig().lr == 1e-2 and ProbeConfig(kind="mlp").lr == 1e-3
    assert ProbeConfig(kind="mlp", lr=0.5).lr == 0.5
    assert set(PROBE_DESCRIPTIONS) == set(TASKS) and all(set(d) == set(PROBES) for d in PROBE_DESCRIPTIONS.values())


def test_epochs_and_patience_defaults_depend_on_full_batch_early_stopping():
    lin, mlp = ProbeConfig("linear"), ProbeConfig("mlp")
    assert lin.max_epochs is None and lin.patience is None
    # one batch, early-stopped
    assert lin.schedule(2048) == (FULL_BATCH_LINEAR_MAX_EPOCHS, FULL_BATCH_LINEAR_PATIENCE) == (300, 20)
    assert mlp.schedule(1400) == (300, FULL_BATCH_MLP_PATIENCE) == (300, 5)
    for cfg in (lin, mlp):  # mini-batches, or no validation split: the general defaults
        assert cfg.schedule(2049) == (300, 20) and cfg.schedule(100, validation=False) == (300, 20)
    assert ProbeConfig("linear", batch_size=64).schedule(100) == (300, 20)
    assert ProbeConfig("linear", max_epochs=400).schedule(100) == (400, 20)  # values given always win
    assert ProbeConfig("linear", patience=7).schedule(100) == (300, 7)
    assert ProbeConfig("mlp", patience=20).schedule(100) == (300, 20)
    assert ProbeConfig("mlp", max_epochs=7, patience=2).schedule(10**6, validation=False) == (7, 2)


@pytest.mark.parametrize("kwargs,match", [
    (dict(kind="svm"), "unknown probe 'svm'; valid: linear, mlp"),
    (dict(class_weight="auto"), "class_weight must be none or balanced, got 'auto'"),
    (dict(max_epochs=0), "max_epochs must be >= 1, got 0"),
    (dict(patience=0), "patience must be >= 1"),
    (dict(batch_size=0), "batch_size must be >= 1"),
    (dict(hidden=0), "hidden must be >= 1"),
    (dict(lr=0.0), "lr must be > 0, got 0.0"),
])
def test_bad_settings_are_named(kwargs, match):
    with pytest.raises(MMIBError, match=match):
        ProbeConfig(**kwargs)


def test_from_options_takes_the_protocols_seed_unless_given():
    c = ProbeConfig.from_options("mlp", {"max_epochs": 5}, seed=7)
    assert (c.kind, c.max_epochs, c.seed, c.lr) == ("mlp", 5, 7, 1e-3)
    assert ProbeConfig.from_options("linear", {"seed": 2}, seed=7).seed == 2
    assert ProbeConfig.from_options("linear", None).seed == 0
    with pytest.raises(UnknownNameError, match=r"unknown probe option 'epochs'; did you mean 'max_epochs'\?"):
        ProbeConfig.from_options("linear", {"epochs": 5})
    with pytest.raises(UnknownNameError, match="'kind'"):
        ProbeConfig.from_options("linear", {"kind": "mlp"})  # the kind is the protocol's, not an option


def test_result_dict_drops_the_predictions():
    r = ProbeResult({"accuracy": 0.9}, {"accuracy": 0.5}, "linear", "d", 3, 0.1, 10, 2, 4, 8,
                    predictions=np.zeros(4))
    d = r.to_dict()
    assert "predictions" not in d and d["metrics"] == {"accuracy": 0.9} and d["dim"] == 8
    assert r.predictions is not None  # the result itself keeps them


def test_feature_checks():
    x = _check([[1, 2], [3, 4]], "train", 2)
    assert x.dtype == np.float32 and x.shape == (2, 2)
    bad = np.ones((3, 2))
    bad[2, 1] = np.nan
    cases = [((None, "val"), "probe: val features are missing"),
             ((np.ones(3), "train"), r"must be 2-D \(N, d\), got shape \(3,\)"),
             ((np.ones((0, 2)), "test"), "the test split is empty"),
             ((bad, "train"), r"train features hold NaN or inf \(row 2\)"),
             ((np.ones((3, 2)), "train", 4), "train has 3 feature rows but 4 targets")]
    for args, match in cases:
        with pytest.raises(MMIBError, match=match):
            _check(*args)


def test_torch_threads_is_restored():
    before = torch.get_num_threads()
    other = 2 if before != 2 else 1
    with torch_threads(other):
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(other):
        raise RuntimeError("restored on errors too")
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before


def test_the_default_linear_probe_converges_on_raw_sim_align_features():
    # the full-batch shortcut of issue 24 (100 epochs, patience 15) stopped this probe 19 points short on a run of the
    # alignment suite (sim_align M = 5); the default must match a long schedule on such features
    import numpy as np

    from mmib.data.synthetic.align import make_sim_align
    from mmib.eval.probe.fit import fit_probe

    ds = make_sim_align(n_samples=2000, n_modalities=5, seed=2)
    idx = np.random.default_rng(0).permutation(len(ds))
    parts = np.split(idx, [1400, 1700])
    xs, ys = [], []
    for part in parts:
        b = ds.get_batch(part)
        xs.append(np.concatenate([b["x"][m].numpy().reshape(len(part), -1) for m in ds.spec.modality_names], 1))
        ys.append(b["y"].numpy())
    mu, sd = xs[0].mean(0), xs[0].std(0) + 1e-6
    xs = [(x - mu) / sd for x in xs]
    args = (xs[0], ys[0], xs[1], ys[1], xs[2], ys[2], "classification", int(ds.spec.n_classes))
    default = fit_probe(*args, config=ProbeConfig("linear", seed=0)).metrics["accuracy"]
    long = fit_probe(*args, config=ProbeConfig("linear", max_epochs=2000, patience=50, seed=0)).metrics["accuracy"]
    short = fit_probe(*args, config=ProbeConfig("linear", max_epochs=100, patience=15, seed=0)).metrics["accuracy"]
    assert default >= long - 0.02, (default, long, short)
