"""The pair_probe protocol (OVA-IB's trajectory-pair classification): known answers on synthetic groups. The
identity test method's representation is its input, so the answer is known: when each group (trajectory) has
its own centre, a probe on ``[z_a, z_b, |z_a − z_b|, z_a ⊙ z_b]`` tells same-group pairs from different-group
ones, even for groups it never saw (the splits are by group); when the input ignores the group, it cannot beat
chance (0.5)."""

import numpy as np
import pytest

from mmib.data.datamodule import MultimodalDataModule
from mmib.data.dataset import MultimodalDataset
from mmib.data.spec import DatasetSpec, ModalitySpec
from mmib.errors import MMIBError, UnknownNameError
from mmib.eval.evaluate import evaluate
from mmib.eval.protocols import EvalContext, pair_features, parse_protocols, run_pair_probe

from ..conftest import IdentityMethod

FAST = {"max_epochs": 80, "patience": 10}


def _grouped_dm(encodes_group: bool, n_groups: int = 60, per_group: int = 10, seed: int = 0,
                groups: bool = True) -> MultimodalDataModule:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(n_groups), per_group)
    n = len(g)
    if encodes_group:  # every trajectory has its own centre; its samples scatter little around it
        ca, cb = rng.normal(size=(n_groups, 6)) * 2, rng.normal(size=(n_groups, 4)) * 2
        a, b = ca[g] + 0.2 * rng.normal(size=(n, 6)), cb[g] + 0.2 * rng.normal(size=(n, 4))
    else:  # the same marginal, but drawn independently of the group
        a, b = rng.normal(size=(n, 6)) * 2, rng.normal(size=(n, 4)) * 2
    spec = DatasetSpec("pairs_toy", (ModalitySpec("a", "vector", (6,)), ModalitySpec("b", "vector", (4,))),
                       task="none")
    ds = MultimodalDataset(spec, {"a": a.astype(np.float32), "b": b.astype(np.float32)},
                           groups=g if groups else None)
    return MultimodalDataModule(ds, batch_size=64, seed=seed)


def test_pair_features_hand_computed():
    z = np.array([[1.0, -2.0], [3.0, 0.5], [0.0, 4.0]], dtype=np.float32)
    f = pair_features(z, np.array([0, 2]), np.array([1, 0]))
    np.testing.assert_allclose(f[0], [1, -2, 3, 0.5, 2, 2.5, 3, -1])
    np.testing.assert_allclose(f[1], [0, 4, 1, -2, 1, 6, 0, -8])


@pytest.mark.parametrize("probe", ["mlp", "linear"])
def test_representation_that_encodes_the_group_is_far_above_chance(probe):
    dm = _grouped_dm(encodes_group=True)
    res = run_pair_probe(EvalContext(IdentityMethod(dm.spec), dm), {"probe": probe, "probe_options": FAST})
    (row,) = res["rows"]
    assert row["id"] == f"method/concat/{probe}" and row["source"] == "method"
    assert row["dim"] == 4 * 10  # [z_a, z_b, |z_a - z_b|, z_a * z_b] of the 10-d concatenation
    assert row["chance"]["accuracy"] == pytest.approx(0.5, abs=0.02)
    assert row["metrics"]["accuracy"] > 0.9 and row["metrics"]["balanced_accuracy"] > 0.9
    # pairs never cross splits and follow the split sizes (pairs_per_sample = 1)
    assert res["n_pairs"] == {s: len(dm.indices[s]) for s in ("train", "val", "test")}
    assert row["n_test"] == res["n_pairs"]["test"] and row["n_val"] == res["n_pairs"]["val"]


def test_label_independent_representation_is_at_chance():
    dm = _grouped_dm(encodes_group=False, n_groups=80)
    res = run_pair_probe(EvalContext(IdentityMethod(dm.spec), dm),
                         {"probe": "mlp", "pairs_per_sample": 2, "probe_options": FAST})
    (row,) = res["rows"]
    assert abs(row["metrics"]["accuracy"] - 0.5) <= 0.1
    assert abs(row["metrics"]["balanced_accuracy"] - 0.5) <= 0.1


def test_pair_probe_options_representations_and_raw_baseline():
    dm = _grouped_dm(encodes_group=True, n_groups=30)
    res = run_pair_probe(EvalContext(IdentityMethod(dm.spec), dm),
                         {"probe": "linear", "representation": "rep:a", "modalities": ["a"], "baseline_raw": True,
                          "probe_options": FAST})
    assert [r["id"] for r in res["rows"]] == ["method/rep:a/linear", "raw/concat/linear"]
    assert [r["dim"] for r in res["rows"]] == [24, 24]
    # identity method: its representation of a IS a's raw input -> the same numbers
    assert res["rows"][0]["metrics"] == res["rows"][1]["metrics"]
    assert res["modalities"] == ["a"]


def test_bad_options_and_missing_groups_are_named():
    dm = _grouped_dm(encodes_group=True, n_groups=20)
    ctx = EvalContext(IdentityMethod(dm.spec), dm)
    with pytest.raises(UnknownNameError, match=r"unknown option of protocol 'pair_probe' 'probes'; did you mean 'probe'.*valid: .*probe"):
        run_pair_probe(ctx, {"probes": ["mlp"]})
    with pytest.raises(UnknownNameError, match=r"unknown probe 'svm'; valid: linear, mlp"):
        run_pair_probe(ctx, {"probe": "svm"})
    with pytest.raises(MMIBError, match=r"pairs_per_sample must be a number > 0, got 0"):
        run_pair_probe(ctx, {"pairs_per_sample": 0})
    nog = _grouped_dm(encodes_group=True, n_groups=20, groups=False)
    with pytest.raises(MMIBError, match=r"pair_probe: data set 'pairs_toy' has no groups; the pair probe needs a group"):
        run_pair_probe(EvalContext(IdentityMethod(nog.spec), nog), {})


def test_a_split_with_one_group_is_named():
    dm = _grouped_dm(encodes_group=True, n_groups=20)
    dm.indices["test"] = dm.indices["test"][:1]  # a single sample: no pair of two groups
    with pytest.raises(MMIBError, match=r"pair_probe: the test split of data set 'pairs_toy' cannot give"):
        run_pair_probe(EvalContext(IdentityMethod(dm.spec), dm), {"probe_options": FAST})


def test_pair_probe_in_an_evaluation_report_and_paper_block(tmp_path):
    dm = _grouped_dm(encodes_group=True, n_groups=30)
    paper = {"source": "toy", "metric": "accuracy", "scale": 100, "protocol": "pair_probe",
             "row": "method/concat/linear", "reported": {"identity_test": 99.0}}
    protocols = [{"pair_probe": {"probe": "linear", "probe_options": FAST}}]
    assert [p.kind for p in parse_protocols(protocols)] == ["pair_probe"]
    res = evaluate(IdentityMethod(dm.spec), dm, protocols, out_dir=tmp_path, config={"paper": paper}, progress=False)
    row = res["protocols"]["pair_probe"]["rows"][0]
    assert res["paper_vs_ours"]["ours"]["values"]["accuracy"] == pytest.approx(100 * row["metrics"]["accuracy"])
    md = (tmp_path / "report.md").read_text()
    assert "same-group pair classification" in md and "|z_a - z_b|" in md
