import os

import pytest
import torch

os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Caches (OMIB's MINE estimates) go to a per-session temporary folder, never to the user's ~/.cache."""
    monkeypatch.setenv("MMIB_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "mmib-cache"))


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    yield
