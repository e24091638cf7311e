"""mmib.api.arrays: the checks at the boundary of MultimodalModel (numeric arrays, labels, class names) and the
DatasetSpec inferred from in-memory arrays."""

import numpy as np
import pytest
import torch

from mmib.api.arrays import (
    as_labels,
    as_numeric,
    checked_arrays,
    encode_names,
    eval_labels,
    infer_spec,
    warn_single_class,
)
from mmib.data.dataset import DataValidationError, DataWarning
from mmib.data.spec import DatasetSpec, ModalitySpec
from mmib.errors import UnknownNameError


def test_as_numeric_keeps_numbers_and_names_the_modality_otherwise():
    t = torch.arange(6, dtype=torch.float32).reshape(3, 2)
    a = as_numeric("eeg", t)
    assert isinstance(a, np.ndarray) and a.shape == (3, 2) and np.array_equal(a, t.numpy())
    assert as_numeric("eeg", [[1, 2], [3, 4]]).dtype.kind == "i"
    with pytest.raises(DataValidationError, match=r"^fit: modality 'eeg': expected a real numeric array .* "
                                                  r"got strings"):
        as_numeric("eeg", np.array([["a", "b"]]), where="fit: ")
    with pytest.raises(DataValidationError, match="got booleans"):
        as_numeric("eeg", np.ones((2, 2), bool))
    with pytest.raises(DataValidationError, match="got complex numbers"):
        as_numeric("eeg", np.ones((2, 2), complex))
    with pytest.raises(DataValidationError, match=r"modality 'eeg': expected an array \(N, \.\.\.\) with a feature "
                                                  r"axis, got shape \(3,\)"):
        as_numeric("eeg", np.zeros(3))
    with pytest.raises(DataValidationError, match="modality 'eeg': cannot convert list to an array"):
        as_numeric("eeg", [[1.0, 2.0], [3.0]])  # ragged


def test_as_labels_numbers_stay_numbers_and_names_become_str():
    np.testing.assert_array_equal(as_labels(torch.tensor([0, 2, 1])), [0, 2, 1])
    assert as_labels([0.5, 1.5]).dtype.kind == "f"
    got = as_labels(np.array([b"cat", b"dog"]))
    assert got.dtype.kind == "U" and got.tolist() == ["cat", "dog"]
    mixed = as_labels(np.array(["cat", b"dog"], dtype=object).reshape(2, 1))  # (N, 1) names -> (N,)
    assert mixed.dtype.kind == "U" and mixed.shape == (2,) and mixed.tolist() == ["cat", "dog"]
    assert as_labels(np.array([1, 2.5], dtype=object)).dtype == np.float64
    with pytest.raises(DataValidationError, match="an object array of dict, int"):
        as_labels(np.array([{}, 1], dtype=object))
    with pytest.raises(DataValidationError, match=r"labels y: expected one label per sample, got shape \(\)"):
        as_labels(3)
    with pytest.raises(DataValidationError, match=r"got shape \(0,\)"):
        as_labels([])
    with pytest.raises(DataValidationError, match=r"class names must be one per sample \(N,\), got shape \(2, 2\)"):
        as_labels([["a", "b"], ["c", "d"]])


def test_encode_names_maps_to_sorted_classes_and_refuses_unknown_ones():
    classes = np.array(["ant", "bee", "cat"])
    np.testing.assert_array_equal(encode_names(np.array(["cat", "ant", "bee", "cat"]), classes, ""), [2, 0, 1, 2])
    with pytest.raises(DataValidationError, match=r"^eval: labels y: unknown class 'dog', 'zebra'; the model was fit "
                                                  r"with classes 'ant', 'bee', 'cat'$"):
        encode_names(np.array(["zebra", "ant", "dog"]), classes, "eval: ")


def test_warn_single_class_only_when_every_label_is_the_same():
    with pytest.warns(DataWarning, match=r"the test labels are all class 3 \(4 samples\)"):
        warn_single_class(np.array([3, 3, 3, 3]), "evaluate")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_single_class(np.array([3, 1]), "evaluate")
        warn_single_class(np.array([3]), "evaluate")  # one sample: nothing to say


def _spec(task="classification", n_classes=3):
    return DatasetSpec("toy", (ModalitySpec("a", "vector", (4,)), ModalitySpec("b", "signal", (2, 5))), task=task,
                       n_classes=n_classes if task == "classification" else None)


def test_checked_arrays_validates_each_modality_against_the_spec():
    spec = _spec()
    rng = np.random.default_rng(0)
    X = {"b": rng.normal(size=(6, 2, 5)), "a": rng.normal(size=(6, 4))}
    out = checked_arrays(spec, X)
    assert list(out) == ["a", "b"]  # the data set's order
    assert all(out[m] is X[m] for m in X)
    assert list(checked_arrays(spec, {"a": X["a"]})) == ["a"]
    with pytest.raises(DataValidationError, match="X must be a dict"):
        checked_arrays(spec, [X["a"]])
    with pytest.raises(UnknownNameError, match="unknown modality of data set 'toy' 'c'"):
        checked_arrays(spec, {"c": X["a"]})
    with pytest.raises(DataValidationError, match=r"modality 'a': expected per-sample shape \(4,\), got \(3,\)"):
        checked_arrays(spec, {"a": X["a"][:, :3]})
    with pytest.raises(DataValidationError, match="modality 'a': 0 rows"):
        checked_arrays(spec, {"a": X["a"][:0]})
    bad = X["a"].copy()
    bad[4, 1] = np.nan
    with pytest.raises(DataValidationError, match="modality 'a': NaN or inf in row 4"):
        checked_arrays(spec, {"a": bad})
    big = X["a"].copy()
    big[2, 0] = 1e39
    with pytest.raises(DataValidationError, match=r"modality 'a': values exceed the float32 range \(\|value\| 1e\+39 "
                                                  r"in row 2"):
        checked_arrays(spec, {"a": big})
    with pytest.raises(DataValidationError, match=r"different numbers of rows \('a': 6, 'b': 5\)"):
        checked_arrays(spec, {"a": X["a"], "b": X["b"][:5]})


def test_eval_labels_for_classification_and_regression():
    spec = _spec()
    np.testing.assert_array_equal(eval_labels(spec, None, [0.0, 2.0, 1.0], 3, ""), [0, 2, 1])
    np.testing.assert_array_equal(eval_labels(spec, np.array(["x", "y", "z"]), ["z", "x"], 2, ""), [2, 0])
    with pytest.raises(DataValidationError, match=r"labels y: expected 3 entries \(one per row of X\), got 2"):
        eval_labels(spec, None, [0, 1], 3, "")
    with pytest.raises(DataValidationError, match=r"class indices must lie in \[0, 2\] .* got range \[0, 3\]"):
        eval_labels(spec, None, [0, 3], 2, "")
    with pytest.raises(DataValidationError, match="non-integer floats"):
        eval_labels(spec, None, [0.5, 1.0], 2, "")
    with pytest.raises(DataValidationError, match="class names given, but the model was fit with class indices 0..2"):
        eval_labels(spec, None, ["x", "y"], 2, "")
    with pytest.raises(DataValidationError, match="fit with class names .*'x', 'y', 'z'.*; give y as class names too"):
        eval_labels(spec, np.array(["x", "y", "z"]), [0, 1], 2, "")
    reg = _spec("regression")
    got = eval_labels(reg, None, np.array([1, 2]), 2, "")
    assert got.dtype == np.float64 and got.tolist() == [1.0, 2.0]
    with pytest.raises(DataValidationError, match="fit for regression; expected numeric targets, got class names"):
        eval_labels(reg, None, ["a", "b"], 2, "")
    with pytest.raises(DataValidationError, match="NaN or inf in the targets"):
        eval_labels(reg, None, [1.0, np.inf], 2, "")


def test_infer_spec_kinds_from_rank_and_task_from_labels():
    X = {"v": np.zeros((5, 3)), "s": np.zeros((5, 2, 7)), "i": np.zeros((5, 1, 4, 4))}
    spec = infer_spec(X)
    assert [(m.name, m.kind, m.shape) for m in spec.modalities] == [
        ("v", "vector", (3,)), ("s", "signal", (2, 7)), ("i", "image", (1, 4, 4))]
    assert spec.task == "none" and spec.name == "arrays"
    assert infer_spec(X, kinds={"s": "sequence"}).modality("s").kind == "sequence"
    # integer labels: classification with max + 1 classes (at least 2); names: the number of distinct names
    cls = infer_spec({"v": X["v"]}, y=np.array([0, 4, 1, 1, 0]))
    assert cls.task == "classification" and cls.n_classes == 5
    assert infer_spec({"v": X["v"]}, y=np.zeros(5, int)).n_classes == 2
    assert infer_spec({"v": X["v"]}, y=["b", "a", "c", "a", "a"]).n_classes == 3
    reg = infer_spec({"v": X["v"]}, y=np.zeros((5, 2, 3)))
    assert reg.task == "regression" and reg.target_dim == 6
    assert infer_spec({"v": X["v"]}, y=np.zeros(5)).target_dim == 1
    with pytest.raises(DataValidationError, match="non-empty dict"):
        infer_spec({})
    with pytest.raises(DataValidationError, match="modality names must be strings, got 3"):
        infer_spec({3: X["v"]})
    with pytest.raises(DataValidationError, match="a classification task needs y"):
        infer_spec({"v": X["v"]}, task="classification")
