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


@pytest.fixture
def snapshot():
    """``snapshot(*folders)`` → ``{path: (mtime_ns, sha256)}`` of every file below them: taken before and after an
    action, equal when no existing file changed and none was added or removed (issue 17's "nothing is lost")."""
    import hashlib
    from pathlib import Path

    def take(*roots):
        return {p: (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
                for r in roots if r is not None for p in Path(r).rglob("*") if p.is_file()}  # fmt: skip

    return take
