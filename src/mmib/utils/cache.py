"""The disk cache of mmib: results that are costly to compute and fully determined by their inputs (OMIB's MINE
estimates, the reference classifiers of the OMIB study), kept outside the checkout and found again by a key.

The folder is ``$MMIB_CACHE_DIR`` (default ``~/.cache/mmib``), one sub-folder per kind of result. A key is the
SHA-256 of the input tensors (their shapes and float32 bytes) and of the settings (JSON, keys sorted), so the same
data and settings find the same file and anything else misses it.

Example:
    >>> import torch
    >>> p = keyed_path("demo", [torch.zeros(2, 3)], {"steps": 10})
    >>> p.parent.name, p.suffix, len(p.stem)
    ('demo', '.json', 32)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from mmib.utils.io import atomic_write_json


def cache_root() -> Path:
    """``$MMIB_CACHE_DIR``, or ``~/.cache/mmib`` when it is unset or empty (read at every call)."""
    return Path(os.environ.get("MMIB_CACHE_DIR") or Path.home() / ".cache" / "mmib")


def cache_dir(kind: str) -> Path:
    """The folder of one kind of cached result: ``cache_root() / kind``."""
    if not kind or "/" in kind or kind in (".", ".."):
        raise ValueError(f"cache kind must be a plain folder name, got {kind!r}")
    return cache_root() / kind


def content_key(tensors: Sequence[torch.Tensor], settings: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of the tensors' shapes and float32 bytes, in order, then of ``settings`` as JSON with sorted
    keys (values that JSON cannot write are written with ``str``)."""
    h = hashlib.sha256()
    for v in tensors:
        a = torch.as_tensor(v).detach().float().cpu().contiguous()
        h.update(repr(tuple(a.shape)).encode())
        h.update(a.numpy().tobytes())
    h.update(json.dumps({k: settings[k] for k in sorted(settings)}, sort_keys=True, default=str).encode())
    return h.hexdigest()


def keyed_path(kind: str, tensors: Sequence[torch.Tensor], settings: Mapping[str, Any], suffix: str = ".json") -> Path:
    """Where the result for these tensors and settings is kept: ``cache_dir(kind) / <first 32 hex of the key><suffix>``."""
    return cache_dir(kind) / f"{content_key(tensors, settings)[:32]}{suffix}"


def read_json(path: Path) -> Any | None:
    """The cached JSON at ``path``, or ``None`` when there is none."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None


def write_json(path: Path, obj: Any) -> None:
    """Keep ``obj`` at ``path`` (folders created; an atomic write, so a crash never leaves half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, obj)
