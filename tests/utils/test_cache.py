"""The disk cache (mmib.utils.cache): location, keys (against an independent SHA-256), read/write."""

import hashlib
import json

import pytest
import torch

from mmib.utils.cache import cache_dir, cache_root, content_key, keyed_path, read_json, write_json


def test_root_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MMIB_CACHE_DIR", str(tmp_path))
    assert cache_root() == tmp_path and cache_dir("omib_mine") == tmp_path / "omib_mine"
    monkeypatch.setenv("MMIB_CACHE_DIR", "")
    assert cache_root().parts[-2:] == (".cache", "mmib")
    with pytest.raises(ValueError, match="plain folder name"):
        cache_dir("a/b")


def test_key_is_sha256_of_shapes_bytes_and_sorted_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("MMIB_CACHE_DIR", str(tmp_path))
    views = [torch.arange(6.0).reshape(2, 3), torch.ones(2, 1, dtype=torch.float64)]
    settings = {"steps": 5, "lr": 1e-3}
    h = hashlib.sha256()
    for v in views:
        h.update(repr(tuple(v.shape)).encode())
        h.update(v.float().numpy().tobytes())
    h.update(json.dumps({"lr": 1e-3, "steps": 5}).encode())
    assert content_key(views, settings) == h.hexdigest()
    assert content_key(views, dict(reversed(list(settings.items())))) == h.hexdigest()
    assert content_key([views[0] + 1, views[1]], settings) != h.hexdigest()
    assert keyed_path("k", views, settings) == tmp_path / "k" / f"{h.hexdigest()[:32]}.json"


def test_read_write_round_trip(tmp_path):
    path = tmp_path / "sub" / "x.json"
    assert read_json(path) is None
    write_json(path, {"a": [1.5, 2]})
    assert read_json(path) == {"a": [1.5, 2]}
