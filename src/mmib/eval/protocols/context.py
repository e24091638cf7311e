"""The context a protocol runs in (:class:`EvalContext`): the method, the data module, the seed, where plots go, the
representations of a split, extracted once per evaluation (and cached on disk per checkpoint), and the disk cache of
the raw-feature probes (:meth:`EvalContext.cached_probes`)."""

from __future__ import annotations

import hashlib
import json
import threading
import zipfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mmib.data.datamodule import MultimodalDataModule
from mmib.eval.probe.cache import ProbeCache, array_digest, probe_key
from mmib.eval.probe.config import ProbeResult
from mmib.eval.representations import SplitFeatures, extract_split
from mmib.methods.base import Method
from mmib.utils.progress import ProgressReporter


@dataclass
class EvalContext:
    """What a protocol gets: the method, the data module (its splits), a seed, where plots go, and a cache of
    extracted features shared by the protocols of one evaluation."""

    method: Method
    dm: MultimodalDataModule
    seed: int = 0
    out_dir: Path | None = None
    run_dir: Path | None = None
    reporter: ProgressReporter = field(default_factory=lambda: ProgressReporter(enabled=False))
    #: a folder for representations extracted by an earlier evaluation of the same checkpoint (``cache_key``: the
    #: checkpoint's and the run config's hash); None: extract in memory only
    cache_dir: Path | None = None
    cache_key: str | None = None
    #: the disk cache of probe results on raw features (independent of the method, so shared by every run on the
    #: same data split); None: every probe is fitted
    probe_cache: ProbeCache | None = None
    #: work started ahead of the protocol that uses it (e.g. the ``plots`` protocol's t-SNE maps, computed in a
    #: thread while the probes train: :func:`~mmib.eval.protocols.plots.start_maps`), by a key of that protocol
    background: dict = field(default_factory=dict, repr=False)
    #: a thread for figures (:meth:`draw`); None: figures are drawn at once
    pool: Executor | None = field(default=None, repr=False)
    _drawing: list = field(default_factory=list, repr=False)
    #: held while the method runs (extraction, :meth:`run_method`) and while the feature cache changes: protocols
    #: run in threads side by side (``evaluate(jobs=...)``) share one method and one cache
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _cache: dict = field(default_factory=dict, repr=False)
    _digests: dict = field(default_factory=dict, repr=False)
    #: CPU seconds of each protocol's own thread (:func:`~mmib.eval.protocols.registry.run_protocol`), by name
    cpu: dict = field(default_factory=dict, repr=False)

    @property
    def spec(self):
        return self.dm.spec

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.dm.spec.modality_names

    def capable(self, capability: str) -> bool:
        return bool(type(self.method).capabilities().get(capability, False))

    def features(self, split: str, modalities: Sequence[str], representations: Sequence[str]) -> SplitFeatures:
        """Representations of a split for these modalities, extracted once per (split, modalities, name)."""
        with self.lock:
            return self._features(split, modalities, representations)

    def _features(self, split: str, modalities: Sequence[str], representations: Sequence[str]) -> SplitFeatures:
        mods = self.spec.check_modalities(modalities)
        key = (split, mods)
        have = self._cache.get(key)
        missing = [r for r in representations if have is None or r not in have.features]
        for r in list(missing):
            got = self._load_cached(split, mods, r)
            if got is not None:
                missing.remove(r)
                if have is None:
                    have = got
                else:
                    have.features.update(got.features)
        self._cache[key] = have
        if missing:
            new = extract_split(self.method, self.dm, split, mods, missing)
            for r in missing:
                self._save_cached(split, mods, r, new)
            if have is None:
                have = new
            else:
                have.features.update(new.features)
            self._cache[key] = have
        return have

    def feature_digest(self, split: str, modalities: Sequence[str], representation: str) -> str | None:
        """:func:`~mmib.eval.probe.cache.array_digest` of a representation of a split, computed once."""
        key = (split, self.spec.check_modalities(modalities), representation)
        with self.lock:
            if key not in self._digests:
                self._digests[key] = array_digest(self.features(split, key[1], [representation]).features[representation])
            return self._digests[key]

    def forget(self, modalities: Sequence[str]) -> None:
        """Drop the representations extracted for exactly these modalities (every split) from memory."""
        mods = tuple(modalities)
        with self.lock:
            for k in [k for k in self._cache if k[1] == mods]:
                del self._cache[k]

    def run_method(self, fn: Callable, *args, **kwargs):
        """``fn(*args, **kwargs)`` (a call of the method: ``embed``, ``score``, ...) under :attr:`lock`, one at a
        time beside the other protocols' extractions."""
        with self.lock:
            return fn(*args, **kwargs)

    def cached_probes(self, inputs: Sequence[tuple[str, Sequence[str], str]], arrays: Sequence,
                      settings: Mapping, compute: Callable[[], list[ProbeResult]]) -> list[ProbeResult]:
        """``compute()``, or, when the probe cache is on and every input is a raw representation (``raw``,
        ``raw:<m>``: then the probe does not depend on the method), the results stored under the key of the inputs'
        features (``(split, modalities, representation)`` each), the other ``arrays`` the probe sees (targets, row
        selections; None where absent) and the ``settings`` (probe config, task, classes, ...)."""
        if self.probe_cache is None or not inputs or not all(r == "raw" or r.startswith("raw:") for *_, r in inputs):
            return compute()
        digests = [self.feature_digest(s, m, r) for s, m, r in inputs] + [array_digest(a) for a in arrays]
        return self.probe_cache.results(probe_key(digests, settings), compute)

    def _cache_file(self, split: str, mods: Sequence[str], rep: str) -> Path | None:
        if self.cache_dir is None or self.cache_key is None or rep.startswith("raw"):
            return None
        h = hashlib.sha256(json.dumps([self.cache_key, split, list(mods), rep]).encode())
        h.update(np.ascontiguousarray(self.dm.indices[split]).tobytes())  # the split's rows
        return Path(self.cache_dir) / f"{split}-{h.hexdigest()[:24]}.npz"

    def _load_cached(self, split: str, mods: Sequence[str], rep: str) -> SplitFeatures | None:
        """A representation an earlier evaluation of the same checkpoint stored (never unpickled); None when there
        is none or it cannot be read (it is then extracted again)."""
        path = self._cache_file(split, mods, rep)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                feats, index = z["features"], z["index"]
                y = z["y"] if "y" in z.files else None
                latents = {k.removeprefix("latent__"): z[k] for k in z.files if k.startswith("latent__")}
                dropped = int(z["n_dropped"])
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            return None
        if feats.ndim != 2 or len(feats) != len(index) or not np.isfinite(feats).all():
            return None
        return SplitFeatures({rep: feats}, y, latents, index, dropped)

    def _save_cached(self, split: str, mods: Sequence[str], rep: str, sf: SplitFeatures) -> None:
        path = self._cache_file(split, mods, rep)
        if path is None:
            return
        from mmib.utils.io import atomic_path

        arrays = {"features": sf.features[rep], "index": sf.index, "n_dropped": np.asarray(sf.n_dropped),
                  **({"y": sf.y} if sf.y is not None else {}),
                  **{f"latent__{k}": v for k, v in sf.latents.items()}}
        try:
            with atomic_path(path) as tmp:
                np.savez(tmp, **arrays)
        except OSError:  # a read-only run folder: evaluation goes on without the cache
            pass

    def draw(self, fn: Callable[..., object], *args, **kwargs) -> None:
        """``fn(*args, **kwargs)`` (a figure drawn into a file): in :attr:`pool` beside the next protocols when there
        is one (give it arguments nothing changes afterwards), else now; :meth:`finish_drawing` waits for it."""
        if self.pool is None:
            fn(*args, **kwargs)
        else:
            self._drawing.append(self.pool.submit(fn, *args, **kwargs))

    def finish_drawing(self) -> None:
        """Wait for the figures of :meth:`draw` (raising the first error of any)."""
        pending, self._drawing = self._drawing, []
        for f in pending:
            f.result()

    def plot_path(self, name: str) -> tuple[Path, str] | None:
        """(absolute path, path relative to the report) of a PNG, or None when plots are not written."""
        if self.out_dir is None:
            return None
        p = Path(self.out_dir) / "plots" / f"{name}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        return p, f"plots/{name}.png"

    def component_names(self) -> list[str]:
        idx = self.dm.indices["test"][:4] if len(self.dm.indices["test"]) else self.dm.indices["train"][:4]
        batch = self.dm.dataset.get_batch(idx)
        with torch.no_grad(), self.lock:
            return list(self.method.components(batch, self.modalities))
