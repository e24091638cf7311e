"""The Python API for the notebook path: any registered method on arrays held in memory.

>>> import numpy as np, mmib
>>> rng = np.random.default_rng(0)
>>> z = rng.normal(size=(300, 4))
>>> X = {"a": z @ rng.normal(size=(4, 20)), "b": z @ rng.normal(size=(4, 12))}
>>> model = mmib.MultimodalModel("clip", max_epochs=3, batch_size=32, progress=False, run_dir="/tmp/mmib-doc")
>>> model = model.fit(X)
>>> model.transform(X, modalities=["a"]).shape
(300, 256)

The same configs and engine as ``mmib train`` run underneath; keyword ``overrides`` take any config key
(``{"method.objective.temperature": 0.1}``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmib.config import compose_config, dotted_overrides, to_container
from mmib.data.dataset import DataValidationError, MultimodalDataset
from mmib.data.spec import DatasetSpec, ModalitySpec
from mmib.errors import MMIBError
from mmib.methods.base import Method


def infer_spec(x: Mapping[str, Any], y: Any = None, name: str = "arrays", kinds: Mapping[str, str] | None = None,
               task: str | None = None) -> DatasetSpec:
    """A :class:`DatasetSpec` for in-memory arrays: kinds from the per-sample rank (1 vector, 2 signal, 3 image)
    unless given; the task from ``y`` (integers → classification, floats → regression, None → none)."""
    if not isinstance(x, Mapping) or not x:
        raise DataValidationError("X must be a non-empty dict {modality name: array (N, ...)}")
    kinds = dict(kinds or {})
    mods = []
    for k, a in x.items():
        shape = np.shape(a)
        if len(shape) < 2:
            raise DataValidationError(f"modality '{k}': expected an array (N, ...) with a feature axis, got shape {shape}")
        mods.append(ModalitySpec.infer(k, shape[1:], kind=kinds.get(k)))
    n_classes = None
    if task is None:
        if y is None:
            task = "none"
        else:
            ya = np.asarray(y)
            task = "classification" if ya.dtype.kind in "iub" else "regression"
    if task == "classification":
        n_classes = max(2, int(np.max(np.asarray(y))) + 1)
    target_dim = 1
    if task == "regression":
        ya = np.asarray(y)
        target_dim = 1 if ya.ndim == 1 else int(ya.shape[1])
    return DatasetSpec(name=name, modalities=tuple(mods), task=task, n_classes=n_classes, target_dim=target_dim)


class MultimodalModel:
    """A method by name, trained on in-memory arrays.

    Args:
        method: registered method name (``mmib.methods.method_names()``), e.g. ``"clip"``.
        max_epochs, batch_size, seed, lr: common settings.
        overrides: any other config keys, dotted (``{"method.embed_dim": 128}``).
        run_dir: where checkpoints and logs go (a temporary folder by default).
        progress: show the progress bar.
    """

    def __init__(self, method: str = "clip", max_epochs: int = 50, batch_size: int = 64, seed: int = 0,
                 lr: float | None = None, overrides: Mapping[str, Any] | None = None, run_dir: str | None = None,
                 progress: bool = True, name: str | None = None) -> None:
        opts: dict[str, Any] = {"trainer.max_epochs": max_epochs, "data.batch_size": batch_size, "seed": seed,
                                "trainer.enable_progress_bar": progress}
        if lr is not None:
            opts["method.optim.lr"] = lr
        if run_dir is None:
            import tempfile

            run_dir = tempfile.mkdtemp(prefix="mmib-")
        opts["run_dir"] = run_dir
        opts["name"] = name or f"{method}-api-s{seed}"
        opts.update(dict(overrides or {}))
        self.method_name = method
        self._overrides = [f"method={method}", "data=arrays", *dotted_overrides(opts)]
        self.cfg = compose_config(self._overrides)
        self.method_: Method | None = None
        self.normalization_: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.spec_: DatasetSpec | None = None
        self.run_dir_: Path | None = None
        self.datamodule_: Any = None  # the fit data's splits (None after load: they are not saved)
        self.metrics_: dict[str, float] | None = None

    # ------------------------------------------------------------------ training
    def fit(self, X: Mapping[str, Any], y: Any = None, kinds: Mapping[str, str] | None = None,
            latents: Mapping[str, Any] | None = None, groups: Any = None) -> MultimodalModel:
        from mmib.engine import train

        spec = infer_spec(X, y, kinds=kinds)
        ds = MultimodalDataset(spec, X, y=y, latents=latents, groups=groups)
        res = train(self.cfg, dataset=ds)
        self.method_, self.spec_, self.run_dir_ = res.method, spec, res.run_dir
        self.datamodule_ = res.datamodule
        self.normalization_ = dict(ds.normalization)
        self.metrics_ = res.metrics
        return self

    def _check_fitted(self) -> Method:
        if self.method_ is None:
            raise MMIBError("this MultimodalModel is not fitted yet: call fit(X) first")
        return self.method_

    def _batch(self, X: Mapping[str, Any]) -> dict[str, Any]:
        assert self.spec_ is not None
        mods = self.spec_.check_modalities(list(X))
        x = {}
        for m in mods:
            ms = self.spec_.modality(m)
            t = torch.as_tensor(np.asarray(X[m]), dtype=torch.float32)
            if tuple(t.shape[1:]) != tuple(ms.shape):
                raise DataValidationError(f"modality '{m}': expected per-sample shape {ms.shape}, got {tuple(t.shape[1:])}")
            if m in self.normalization_:
                mean, std = self.normalization_[m]
                t = (t - mean) / std
            x[m] = t
        return {"x": x, "mask": {m: torch.ones(len(x[m]), dtype=torch.bool) for m in mods}}

    @torch.no_grad()
    def transform(self, X: Mapping[str, Any], modalities: Sequence[str] | None = None, representation: str = "concat",
                  space: str = "representation", batch_size: int = 1024) -> np.ndarray:
        """Representations of the given modalities: ``concat`` (default), ``fused``, ``component:<name>``;
        ``space="embedding"`` returns the concatenated objective-space embeddings instead."""
        from mmib.eval.representations import method_representation

        method = self._check_fitted()
        method.eval()
        mods = self.spec_.check_modalities(modalities if modalities is not None else list(X))
        missing = [m for m in mods if m not in X]
        if missing:
            raise DataValidationError(f"transform: modality {missing} requested but not given in X")
        n = len(np.asarray(X[mods[0]]))
        out = []
        for s in range(0, n, batch_size):
            b = self._batch({m: np.asarray(X[m])[s : s + batch_size] for m in mods})
            if space == "embedding":
                e = method.embed(b, mods, space="embedding")
                out.append(torch.cat([e[m] for m in mods], 1))
            else:
                out.append(method_representation(method, b, mods, representation))
        return torch.cat(out).numpy()

    @torch.no_grad()
    def score(self, queries: Mapping[str, Any], candidates: Mapping[str, Any]) -> np.ndarray:
        """Retrieval scores (Nq, Nc) with the method's own scorer: queries = several modalities, candidates = one."""
        method = self._check_fitted()
        if len(candidates) != 1:
            raise MMIBError(f"score: candidates must hold exactly one modality, got {list(candidates)}")
        q = method.embed(self._batch(queries), list(queries), space="embedding")
        c = method.embed(self._batch(candidates), list(candidates), space="embedding")
        return method.score(q, next(iter(c.values()))).numpy()

    def evaluate(self, X: Mapping[str, Any] | None = None, y: Any = None, probe: str = "linear",
                 modalities: Sequence[str] | None = None, seed: int = 0) -> dict[str, float]:
        """Linear (or MLP) probe on frozen representations.

        After :meth:`fit`: the probe is trained on the fit data's train/val split and tested on ``(X, y)`` if given,
        else on the held-out test split of the fit data. After :meth:`load` (the fit data's splits are not saved):
        ``(X, y)`` is required; the probe is trained, validated and tested on a seeded train/val/test split of it
        (the config's ``data.val_fraction`` / ``data.test_fraction``, stratified by class).
        """
        from mmib.eval.probe import ProbeConfig, train_probe
        from mmib.eval.representations import extract

        method = self._check_fitted()
        if X is not None and y is None:
            raise MMIBError("evaluate(X, y): y is needed with X")
        dm = self.datamodule_
        if dm is None:
            if X is None:
                raise MMIBError("evaluate after load needs labelled data: evaluate(X, y) trains and tests the probe "
                                "on a split of (X, y) (the fit data's splits are not saved)")
            return self._evaluate_on_arrays(X, y, probe, modalities, seed)
        if dm.spec.task == "none":
            raise MMIBError("evaluate needs labels: fit(X, y) with y")
        xtr, ytr = extract(method, dm, "train", modalities)
        xva, yva = extract(method, dm, "val", modalities)
        if X is None:
            xte, yte = extract(method, dm, "test", modalities)
        else:
            xte, yte = self.transform(X, modalities), np.asarray(y)
        return train_probe(xtr, ytr, xva, yva, xte, yte, dm.spec.task, dm.spec.n_classes,
                           ProbeConfig(kind=probe, seed=seed))

    def _evaluate_on_arrays(self, X: Mapping[str, Any], y: Any, probe: str, modalities: Sequence[str] | None,
                            seed: int) -> dict[str, float]:
        """The probe trained and tested on a seeded split of labelled arrays (no fit data at hand)."""
        from mmib.data.datamodule import split_indices
        from mmib.eval.probe import ProbeConfig, train_probe

        mods = self.spec_.check_modalities(modalities if modalities is not None else list(X))
        missing = [m for m in mods if m not in X]
        if missing:
            raise DataValidationError(f"evaluate: modality {missing} requested but not given in X")
        given = {m: X[m] for m in mods}
        task = self.spec_.task if self.spec_.task != "none" else None
        spec = infer_spec(given, y, name="evaluate", kinds={m: self.spec_.modality(m).kind for m in mods}, task=task)
        ds = MultimodalDataset(spec, given, y=y)  # validates (X, y): lengths, NaN/inf, label shape
        d = to_container(self.cfg)["data"]
        idx = split_indices(ds, float(d.get("val_fraction", 0.15)), float(d.get("test_fraction", 0.15)), seed,
                            "random")
        for s in ("val", "test"):
            if len(idx[s]) == 0:
                raise MMIBError(f"evaluate(X, y): {len(ds)} samples leave the {s} split empty; give more samples")
        Z, ya = self.transform(given, mods), ds.y.numpy()
        n_classes = spec.n_classes
        if spec.task == "classification" and self.spec_.n_classes:  # the classes seen at fit, if y lacks some
            n_classes = max(n_classes, self.spec_.n_classes)
        return train_probe(Z[idx["train"]], ya[idx["train"]], Z[idx["val"]], ya[idx["val"]], Z[idx["test"]],
                           ya[idx["test"]], spec.task, n_classes, ProbeConfig(kind=probe, seed=seed))

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        method = self._check_fitted()
        torch.save({"overrides": self._overrides, "method_name": self.method_name,
                    "hyper_parameters": dict(method.hparams), "state_dict": method.state_dict(),
                    "spec": self.spec_.to_dict(), "normalization": self.normalization_}, path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> MultimodalModel:
        from mmib.methods.registry import build_method

        d = torch.load(path, map_location="cpu", weights_only=False)
        self = cls.__new__(cls)
        self.method_name = d["method_name"]
        self._overrides = d["overrides"]
        self.cfg = compose_config(self._overrides)
        hp = d["hyper_parameters"]
        self.spec_ = DatasetSpec.from_dict(d["spec"])
        self.method_ = build_method(hp["method_name"], self.spec_, hp["cfg"], hp["encoder_cfg"])
        self.method_.load_state_dict(d["state_dict"])
        self.method_.eval()
        self.normalization_ = d["normalization"]
        self.run_dir_ = None
        self.datamodule_ = None  # evaluate() after load needs (X, y)
        self.metrics_ = None
        return self

    def __repr__(self) -> str:
        c = to_container(self.cfg)
        return f"MultimodalModel(method={self.method_name!r}, max_epochs={c['trainer']['max_epochs']}, fitted={self.method_ is not None})"
