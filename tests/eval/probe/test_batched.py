"""fit_linear_probes (many linear probes trained together) against fit_probe called once per problem."""

import itertools

import numpy as np
import pytest

from mmib.errors import MMIBError
from mmib.eval.probe import ProbeConfig, fit_linear_probes, fit_probe


def _data(task: str, seed: int = 0, n=(160, 60, 80), dims=(5, 3, 4)):
    rng = np.random.default_rng(seed)
    z = {s: rng.normal(size=(k, 2)) for s, k in zip(("tr", "va", "te"), n)}
    blocks = {s: [np.c_[z[s] @ rng.normal(size=(2, d // 2 + 1))[:, : d // 2 + 1], rng.normal(size=(len(z[s]), d - d // 2 - 1))]
                  .astype(np.float32) for d in dims] for s in z}
    if task == "classification":
        y = {s: (z[s][:, 0] > 0).astype(np.int64) + 2 * (z[s][:, 1] > 0.5) for s in z}
    else:
        y = {s: (z[s] @ np.array([1.0, -0.5])).astype(np.float32) for s in z}
    return blocks, y


@pytest.mark.parametrize("task,class_weight,batch_size", [("classification", "none", 2048),
                                                          ("classification", "balanced", 2048),
                                                          ("classification", "none", 48),
                                                          ("regression", "none", 2048)])
def test_batched_probes_match_one_by_one(task, class_weight, batch_size):
    blocks, y = _data(task)
    problems = [c for k in (1, 2, 3) for c in itertools.combinations(range(3), k)]
    cfg = ProbeConfig(kind="linear", max_epochs=60, patience=5, batch_size=batch_size, class_weight=class_weight,
                      seed=3)
    many = fit_linear_probes(blocks["tr"], y["tr"], blocks["va"], y["va"], blocks["te"], y["te"], problems, task,
                             4 if task == "classification" else None, cfg)
    assert len(many) == len(problems)
    for prob, r in zip(problems, many):
        cat = {s: np.concatenate([blocks[s][b] for b in prob], 1) for s in blocks}
        one = fit_probe(cat["tr"], y["tr"], cat["va"], y["va"], cat["te"], y["te"], task,
                        4 if task == "classification" else None, cfg)
        assert r.epochs == one.epochs, prob
        assert r.dim == one.dim
        assert r.best_val_loss == pytest.approx(one.best_val_loss, rel=1e-4, abs=1e-6)
        if task == "classification":
            assert np.mean(r.predictions == one.predictions) >= 0.98, prob
        else:
            np.testing.assert_allclose(r.predictions, one.predictions, rtol=1e-3, atol=1e-4)
        for k, v in one.metrics.items():
            assert r.metrics[k] == pytest.approx(v, abs=0.03), (prob, k)


def test_batched_probes_without_validation_run_max_epochs():
    blocks, y = _data("classification", seed=1)
    cfg = ProbeConfig(kind="linear", max_epochs=7)
    many = fit_linear_probes(blocks["tr"], y["tr"], None, None, blocks["te"], y["te"], [(0,), (1, 2)],
                             "classification", 4, cfg)
    assert [r.epochs for r in many] == [7, 7]
    assert all(np.isnan(r.best_val_loss) for r in many)


def test_batched_probes_bad_input():
    blocks, y = _data("classification")
    with pytest.raises(MMIBError, match="out of range"):
        fit_linear_probes(blocks["tr"], y["tr"], None, None, blocks["te"], y["te"], [(0, 5)])
    with pytest.raises(MMIBError, match="only the linear probe"):
        fit_linear_probes(blocks["tr"], y["tr"], None, None, blocks["te"], y["te"], [(0,)],
                          config=ProbeConfig(kind="mlp"))
    bad = [b.copy() for b in blocks["tr"]]
    bad[1][3, 0] = np.nan
    with pytest.raises(MMIBError, match="NaN"):
        fit_linear_probes(bad, y["tr"], None, None, blocks["te"], y["te"], [(0, 1)])


def test_batched_probes_when_a_block_loses_all_its_probes():
    """One problem per block: when a probe stops, its block has no active probe left (the compact state drops it)
    while the others go on; each result still equals fit_probe's."""
    blocks, y = _data("classification", seed=2)
    problems = [(0,), (1,), (2,)]
    cfg = ProbeConfig(kind="linear", max_epochs=80, patience=3, seed=1)
    many = fit_linear_probes(blocks["tr"], y["tr"], blocks["va"], y["va"], blocks["te"], y["te"], problems,
                             "classification", 4, cfg)
    epochs = [r.epochs for r in many]
    assert len(set(epochs)) > 1, epochs  # the probes stop at different epochs
    for prob, r in zip(problems, many):
        x = {s: blocks[s][prob[0]] for s in blocks}
        one = fit_probe(x["tr"], y["tr"], x["va"], y["va"], x["te"], y["te"], "classification", 4, cfg)
        assert r.epochs == one.epochs, prob
        assert r.best_val_loss == pytest.approx(one.best_val_loss, rel=1e-4, abs=1e-6)
        assert np.mean(r.predictions == one.predictions) >= 0.98, prob
