"""mmib.data.spec: the data contract (ModalitySpec, DatasetSpec): what is checked and named, the kind inference, the
modality subsets and the dict round trip."""

import pytest

from mmib.data.spec import KIND_NDIM, MODALITY_KINDS, DatasetSpec, DataValidationError, ModalitySpec
from mmib.errors import MMIBError, UnknownNameError


def test_spec_errors(toy_spec):
    with pytest.raises(ValueError, match="kind must be one of"):
        ModalitySpec("a", "audio", (3,))
    with pytest.raises(ValueError, match=r"a signal has 2 per-sample dimensions, got shape \(3,\)"):
        ModalitySpec("a", "signal", (3,))
    with pytest.raises(ValueError, match="duplicate modality names"):
        DatasetSpec("d", (ModalitySpec("a", "vector", (3,)), ModalitySpec("a", "vector", (3,))))
    with pytest.raises(UnknownNameError, match=r"unknown modality of data set 'toy' 'q'; valid: a, s"):
        toy_spec().check_modalities(["q"])
    spec = toy_spec()
    assert DatasetSpec.from_dict(spec.to_dict()) == spec


def test_modality_spec_checks_name_shape_and_channels():
    assert issubclass(DataValidationError, MMIBError) and issubclass(DataValidationError, ValueError)
    with pytest.raises(DataValidationError, match="name must be a non-empty string"):
        ModalitySpec("", "vector", (3,))
    with pytest.raises(DataValidationError, match=r"'eeg\.raw': a modality name cannot contain '\.'.*'eeg_raw'"):
        ModalitySpec("eeg.raw", "signal", (2, 10))
    for bad in [(0,), (-2,), (2.5,)]:
        with pytest.raises(DataValidationError, match="shape entries must be positive ints"):
            ModalitySpec("a", "vector", bad)
    with pytest.raises(DataValidationError, match="3 channel names for 2 channels"):
        ModalitySpec("eeg", "signal", (2, 10), channels=["Cz", "Pz", "Oz"])
    m = ModalitySpec("eeg", "signal", [2, 10], rate=250.0, channels=["Cz", "Pz"])
    assert m.shape == (2, 10) and m.channels == ("Cz", "Pz")  # lists become tuples (hashable, frozen)
    assert ModalitySpec("text", "sequence", (None, 7)).shape == (None, 7)  # variable length
    assert {k: len(ModalitySpec("m", k, (2,) * KIND_NDIM[k]).shape) for k in MODALITY_KINDS} == KIND_NDIM


@pytest.mark.parametrize("kind,shape,dim", [("vector", (5,), 5), ("sequence", (None, 7), 7), ("signal", (3, 100), 3),
                                            ("image", (1, 28, 28), 1)])
def test_feature_dim(kind, shape, dim):
    assert ModalitySpec("m", kind, shape).feature_dim == dim


def test_infer_kind_from_the_per_sample_shape():
    assert ModalitySpec.infer("v", (4,)).kind == "vector"
    assert ModalitySpec.infer("s", (2, 50), rate=100.0) == ModalitySpec("s", "signal", (2, 50), rate=100.0)
    assert ModalitySpec.infer("i", (3, 8, 8)).kind == "image"
    assert ModalitySpec.infer("q", (50, 2), kind="sequence").kind == "sequence"
    with pytest.raises(DataValidationError, match=r"cannot infer a kind from per-sample shape \(1, 2, 3, 4\)"):
        ModalitySpec.infer("x", (1, 2, 3, 4))


def test_dataset_spec_task_and_modalities(toy_spec):
    with pytest.raises(DataValidationError, match="needs at least one modality"):
        DatasetSpec("d", ())
    with pytest.raises(DataValidationError, match="task must be one of"):
        DatasetSpec("d", (ModalitySpec("a", "vector", (3,)),), task="ranking")
    with pytest.raises(DataValidationError, match="a classification task needs n_classes >= 2"):
        DatasetSpec("d", (ModalitySpec("a", "vector", (3,)),), task="classification", n_classes=1)
    spec = toy_spec()
    assert spec.modality_names == ("a", "s") and spec.modality("s").kind == "signal"
    with pytest.raises(UnknownNameError, match="'q'"):
        spec.modality("q")
    assert spec.check_modalities(None) == ("a", "s")
    assert spec.check_modalities(["s", "a"]) == ("a", "s")  # the data set's order, not the request's
    assert spec.check_modalities("s") == ("s",)
    with pytest.raises(DataValidationError, match="an empty set of modalities was requested"):
        spec.check_modalities([])


def test_subset_and_dict_round_trip_keep_everything_else():
    full = DatasetSpec("d", (ModalitySpec("eeg", "signal", (2, 10), rate=250.0, channels=("Cz", "Pz")),
                             ModalitySpec("img", "image", (1, 4, 4)), ModalitySpec("v", "vector", (3,))),
                       task="regression", target_dim=2, latents={"z": 0, "k": 4}, description="toy")
    sub = full.subset(["v", "eeg"])
    assert sub.modality_names == ("eeg", "v") and sub.modality("eeg") == full.modality("eeg")
    assert (sub.task, sub.target_dim, sub.latents, sub.description) == ("regression", 2, {"z": 0, "k": 4}, "toy")
    d = full.to_dict()
    assert d["modalities"][0] == {"name": "eeg", "kind": "signal", "shape": [2, 10], "rate": 250.0,
                                  "channels": ["Cz", "Pz"]}
    assert DatasetSpec.from_dict(d) == full and DatasetSpec.from_dict(sub.to_dict()) == sub
    minimal = DatasetSpec.from_dict({"name": "m", "modalities": [{"name": "a", "kind": "vector", "shape": [2]}]})
    assert (minimal.task, minimal.n_classes, minimal.target_dim, minimal.latents) == ("none", None, 1, {})
