"""A content-addressed disk cache of probe results (:class:`ProbeCache`), for the probes whose inputs do not depend on
the trained method: the raw-feature baselines (``probe``'s ``raw`` rows, ``info_probe``'s ``raw:*`` rows, the raw
subset rows). Every run of a suite on the same data split fits them on the same features, so they are fitted once
and read back afterwards.

Where: ``$MMIB_CACHE_DIR/probes`` (default ``~/.cache/mmib/probes``, :mod:`mmib.utils.cache`), one JSON file per
key. ``mmib eval --no-cache`` (``evaluate(..., probe_cache=False)``) neither reads nor writes it.

The key (:func:`probe_key`) is the SHA-256 of

* the digest (:func:`array_digest`: dtype, shape and bytes) of every array the probe sees — the train / val / test
  features, the targets, the row selections — given by the caller in a fixed order;
* the settings: the :class:`~mmib.eval.probe.config.ProbeConfig` (every field), the task, the number of classes, the
  fitting function and, for batched probes, the problems;
* :func:`code_version`: the SHA-256 of the source files that decide a probe's result (this package's modules,
  :mod:`mmib.eval.metrics`, the MLP of :mod:`mmib.nn.heads`) and the torch and numpy versions. Any edit of those
  files changes every key, so results of older probe code are never read; :data:`FORMAT` is bumped by hand only
  when the stored JSON's layout changes.

Only JSON is stored (metrics, chance, epochs, best validation loss, sizes, dims, predictions as lists), written
atomically; an entry that cannot be read or does not match its key is ignored with a warning and recomputed (then
overwritten). The probes are deterministic (fixed seed, one thread by default), so a cached result is the result the
probe would compute again on the same machine and library versions.
"""

from __future__ import annotations

import functools
import hashlib
import json
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import numpy as np

from mmib.eval.probe.config import ProbeConfig, ProbeResult

#: the sub-folder of the disk cache (:func:`mmib.utils.cache.cache_dir`)
KIND = "probes"
#: the layout of a stored entry; bump it when that layout changes (the probe code's edits change the keys by
#: themselves, through :func:`code_version`)
FORMAT = 1

_RESULT_FIELDS = tuple(f.name for f in fields(ProbeResult) if f.name != "predictions")


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """SHA-256 (hex) of the sources that decide a probe's result, and of the torch / numpy versions."""
    import torch

    import mmib.eval.metrics as metrics
    import mmib.nn.heads as heads

    here = Path(__file__).parent
    files = sorted(p for p in here.glob("*.py")) + [Path(metrics.__file__), Path(heads.__file__)]
    h = hashlib.sha256(f"format {FORMAT}; torch {torch.__version__}; numpy {np.__version__}".encode())
    for p in files:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def array_digest(a: Any) -> str | None:
    """SHA-256 (hex) of an array's dtype, shape and C-order bytes; None for None."""
    if a is None:
        return None
    a = np.ascontiguousarray(np.asarray(a))
    if a.dtype == object:
        raise TypeError("array_digest: object arrays have no stable bytes")
    h = hashlib.sha256(f"{a.dtype.str} {a.shape}".encode())
    h.update(memoryview(a).cast("B"))
    return h.hexdigest()


def probe_key(arrays: Sequence[str | None], settings: Mapping[str, Any]) -> str:
    """The key of a probe result: ``arrays`` are digests (:func:`array_digest`, in the caller's fixed order),
    ``settings`` anything JSON-able (a :class:`ProbeConfig` is written field by field)."""
    norm = {k: asdict(v) if isinstance(v, ProbeConfig) else v for k, v in settings.items()}
    text = json.dumps({"code": code_version(), "arrays": list(arrays), "settings": norm}, sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _encode(r: ProbeResult) -> dict[str, Any]:
    d = {k: getattr(r, k) for k in _RESULT_FIELDS}
    p = r.predictions
    d["predictions"] = None if p is None else {"dtype": np.asarray(p).dtype.str, "shape": list(np.shape(p)),
                                               "values": np.asarray(p).reshape(-1).tolist()}
    return d


def _decode(d: Mapping[str, Any]) -> ProbeResult:
    missing = [k for k in (*_RESULT_FIELDS, "predictions") if k not in d]
    if missing:
        raise ValueError(f"fields missing: {missing}")
    p = d["predictions"]
    pred = None
    if p is not None:
        pred = np.asarray(p["values"], dtype=np.dtype(p["dtype"])).reshape(p["shape"])
    metrics = {str(k): float(v) for k, v in d["metrics"].items()}
    chance = {str(k): float(v) for k, v in d["chance"].items()}
    return ProbeResult(metrics=metrics, chance=chance, probe=str(d["probe"]), description=str(d["description"]),
                       epochs=int(d["epochs"]), best_val_loss=float(d["best_val_loss"]), n_train=int(d["n_train"]),
                       n_val=int(d["n_val"]), n_test=int(d["n_test"]), dim=int(d["dim"]), predictions=pred)


class ProbeCache:
    """Probe results on disk, by key (:func:`probe_key`). ``folder``: default ``$MMIB_CACHE_DIR/probes``.

    >>> cache = ProbeCache(folder)  # doctest: +SKIP
    >>> results = cache.results(key, lambda: [fit_probe(...)])  # doctest: +SKIP
    """

    def __init__(self, folder: str | Path | None = None):
        if folder is None:
            from mmib.utils.cache import cache_dir

            folder = cache_dir(KIND)
        self.folder = Path(folder)
        self.hits = 0
        self.misses = 0
        self._count = threading.Lock()  # protocols in threads side by side share one cache

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def load(self, key: str, count: int | None = None) -> list[ProbeResult] | None:
        """The stored results of ``key`` (``count`` of them when given), or None when there are none; an entry that
        cannot be read or does not match is reported with a warning and treated as absent."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            d = json.loads(path.read_text())
            if not isinstance(d, dict) or d.get("format") != FORMAT or d.get("key") != key:
                raise ValueError("not an entry of this key and format")
            results = [_decode(x) for x in d["results"]]
            if count is not None and len(results) != count:
                raise ValueError(f"{len(results)} results, expected {count}")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            warnings.warn(f"probe cache: ignoring the unreadable entry {path} ({type(e).__name__}: {e}); the probe "
                          "is fitted again", stacklevel=2)
            return None
        return results

    def store(self, key: str, results: Sequence[ProbeResult]) -> None:
        """Keep ``results`` under ``key`` (atomically); a folder that cannot be written is reported and skipped."""
        from mmib.utils.io import atomic_write_json

        entry = {"format": FORMAT, "key": key, "results": [_encode(r) for r in results]}
        try:
            atomic_write_json(self.path(key), entry)
        except OSError as e:
            warnings.warn(f"probe cache: cannot write {self.path(key)} ({e}); going on without it", stacklevel=2)

    def results(self, key: str, compute: Callable[[], list[ProbeResult]]) -> list[ProbeResult]:
        """The stored results of ``key``, or ``compute()`` (then stored)."""
        got = self.load(key)
        with self._count:
            if got is not None:
                self.hits += 1
            else:
                self.misses += 1
        if got is not None:
            return got
        out = compute()
        self.store(key, out)
        return out
