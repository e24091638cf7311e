"""mmib.data.registry: registering a builder, its options read from the signature, building by name with the options
checked, and optional dependencies checked before the builder runs."""

import importlib

import numpy as np
import pytest

from mmib.data import registry
from mmib.data.dataset import MultimodalDataset
from mmib.data.registry import build_dataset, dataset_names, get_dataset_entry, register_dataset
from mmib.data.spec import DatasetSpec, ModalitySpec
from mmib.errors import MissingDependencyError, UnknownNameError


@pytest.fixture
def private_registry(monkeypatch):
    """A copy of the registry (the lazily imported modules already loaded), so test entries do not leak."""
    registry._load_all()
    monkeypatch.setattr(registry, "DATASETS", dict(registry.DATASETS))
    return registry.DATASETS


def _toy(n: int, dim: int = 3, scale: float = 1.0) -> MultimodalDataset:
    """A toy data set.

    More lines that are not the description."""
    spec = DatasetSpec("toy_reg", (ModalitySpec("a", "vector", (dim,)),))
    return MultimodalDataset(spec, {"a": scale * np.ones((n, dim), np.float32)})


def test_register_build_and_options(private_registry):
    register_dataset("toy_reg")(_toy)
    entry = get_dataset_entry("toy_reg")
    assert entry.description == "A toy data set."
    assert entry.options == {"n": None, "dim": 3, "scale": 1.0}  # a required option maps to None
    assert "toy_reg" in dataset_names() and dataset_names() == sorted(dataset_names())
    ds = build_dataset("toy_reg", n=4, scale=2.0)
    assert len(ds) == 4 and float(ds.x["a"].max()) == 2.0
    with pytest.raises(UnknownNameError, match=r"unknown option of data set 'toy_reg' 'dims'; did you mean 'dim'"):
        build_dataset("toy_reg", n=4, dims=2)
    with pytest.raises(UnknownNameError, match=r"unknown data set 'toy_rge'; did you mean 'toy_reg'"):
        build_dataset("toy_rge")
    assert register_dataset("toy_reg")(_toy) is _toy  # the same builder again is fine
    with pytest.raises(ValueError, match="data set 'toy_reg' is already registered"):
        register_dataset("toy_reg")(lambda n: _toy(n))
    register_dataset("toy_described", description="given")(lambda n: _toy(n))
    assert private_registry["toy_described"].description == "given"


def test_a_missing_dependency_is_named_before_the_builder_runs(private_registry):
    calls = []

    @register_dataset("toy_needs", requires=(("mmib_no_such_package.sub", "physio"),))
    def needs(n: int = 2):
        calls.append(n)
        return _toy(n)

    with pytest.raises(MissingDependencyError, match=r"data set 'toy_needs' needs the optional package "
                                                     r"'mmib_no_such_package': pip install 'mmib\[physio\]'"):
        build_dataset("toy_needs")
    assert calls == []


def test_every_listed_module_registers_what_it_names():
    """The registry finds each data set's module lazily: every module in the list registers at least one name, and
    every registered builder lives in one of them."""
    names = set(dataset_names())
    assert {"mfeat", "rus_sim", "sim_align", "omib_sim", "cox_sim", "trifeature", "factorcl_sim"} <= names
    modules = {get_dataset_entry(n).builder.__module__ for n in names}
    assert modules <= set(registry._DATASET_MODULES)
    for mod in registry._DATASET_MODULES:
        importlib.import_module(mod)
        assert mod in modules, mod
