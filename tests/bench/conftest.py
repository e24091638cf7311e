"""Shared by the bench tests: a 2-method × 2-seed suite on two views of mfeat, small enough to train in seconds."""

import copy

import pytest

TINY_SUITE = {
    "name": "tiny",
    "seeds": [0, 1],
    "methods": [{"name": "clip-a", "method": "clip", "overrides": {"objective.temperature": 0.1}},
                {"name": "clip-b", "method": "clip", "overrides": {"objective.temperature": 0.5}}],
    "data": [{"name": "mf2", "data": "mfeat", "options": {"views": [0, 2], "batch_size": 256}}],
    "trainer": {"max_epochs": 1},
    "overrides": {"method.representation_dim": 16, "method.embed_dim": 8, "encoder.vector.hidden": [16]},
    "protocols": [{"probe": {"probes": ["linear"], "probe_options": {"max_epochs": 20}}}],
    "leaderboard": {"protocol": "probe", "row": "method/concat/linear", "metric": "accuracy"},
}


@pytest.fixture()
def tiny_suite():
    """A fresh copy of :data:`TINY_SUITE` (tests may change it)."""
    return copy.deepcopy(TINY_SUITE)
