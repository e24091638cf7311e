"""The :class:`MultimodalModel`: a registered method trained on in-memory arrays by the engine of ``mmib train``,
its representations, scores and evaluation, and its model file (``save`` / ``load``)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mmib.api.arrays import (
    as_labels,
    as_numeric,
    checked_arrays,
    encode_names,
    eval_labels,
    infer_spec,
    warn_single_class,
)
from mmib.config import compose_config, dotted_overrides, to_container
from mmib.data.dataset import DataValidationError, MultimodalDataset
from mmib.data.spec import DatasetSpec
from mmib.errors import MMIBError
from mmib.methods.base import Method

#: config keys of a saved model that describe the machine it was saved on, not the model (dropped by ``load``)
_MACHINE_KEYS = frozenset({"run_dir", "name", "overwrite", "resume", "data.trust_pickle"})


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
        self._own_run_dir = run_dir is None  # a temporary folder of the model's own
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
        """Train on ``X`` (``{modality: array (N, ...)}``) and optional labels ``y``: integer class indices, class
        names (strings; mapped to indices in sorted order, kept in ``classes_``) or float regression targets.

        Single-class labels and a constant modality give a :class:`~mmib.data.dataset.DataWarning`; bad input a
        :class:`~mmib.data.dataset.DataValidationError` naming the modality or key.
        """
        from mmib.engine import train

        ya, classes = None if y is None else as_labels(y, "fit: "), None
        if ya is not None and ya.dtype.kind == "U":  # class names → indices 0..K-1 in sorted order (classes_)
            classes, ya = np.unique(ya, return_inverse=True)
            ya = ya.reshape(-1)
        if not isinstance(X, Mapping) or not X:
            raise DataValidationError("fit: X must be a non-empty dict {modality name: array (N, ...)}")
        x = {k: as_numeric(str(k), v, "fit: ") for k, v in X.items()}
        spec = infer_spec(x, ya, kinds=kinds)
        n = len(next(iter(x.values())))
        if n == 0 and all(len(v) == 0 for v in x.values()):
            raise DataValidationError("fit: X holds 0 samples; give at least a few samples per modality")
        ds = MultimodalDataset(spec, x, y=ya, latents=latents, groups=groups)
        res = train(self._fit_config(), dataset=ds)
        self.classes_ = classes  # the class names of y, when y held names (None for class indices)
        self.method_, self.spec_, self.run_dir_ = res.method, spec, res.run_dir
        self.datamodule_ = res.datamodule
        self.normalization_ = dict(ds.normalization)
        self.metrics_ = res.metrics
        return self

    def _fit_config(self) -> dict[str, Any]:
        """The config of this fit, with the API's intent about the run folder stated explicitly (the run-folder rule
        of :func:`mmib.engine.train`): fitting again replaces this model's own earlier run — in a fresh temporary
        folder when the model chose the folder, else by moving the earlier run aside (``overwrite``); a folder that
        holds someone else's run is never touched (the engine stops with an error)."""
        from mmib.engine import is_run_folder, run_folder

        c = dict(to_container(self.cfg))
        folder = run_folder(c)
        own = self.run_dir_ is not None and Path(self.run_dir_).resolve() == folder.resolve()
        if own and is_run_folder(folder) and not c.get("resume"):
            if getattr(self, "_own_run_dir", False):
                import tempfile

                c["run_dir"] = tempfile.mkdtemp(prefix="mmib-")
                self.cfg = compose_config([*self._overrides, f"run_dir={c['run_dir']}"])
            else:
                c["overwrite"] = True
        return c

    def _check_fitted(self) -> Method:
        if self.method_ is None:
            raise MMIBError("this MultimodalModel is not fitted yet: call fit(X) first")
        return self.method_

    def _batch(self, X: Mapping[str, Any], where: str = "", checked: bool = False) -> dict[str, Any]:
        """A normalized batch of the given modalities, validated by :func:`checked_arrays` unless ``checked``."""
        assert self.spec_ is not None
        arrays = X if checked else checked_arrays(self.spec_, X, where)
        x = {}
        for m, a in arrays.items():
            t = torch.as_tensor(a, dtype=torch.float32)
            if m in self.normalization_:
                mean, std = self.normalization_[m]
                t = (t - mean) / std
            x[m] = t
        return {"x": x, "mask": {m: torch.ones(len(x[m]), dtype=torch.bool) for m in x}}

    @torch.no_grad()
    def transform(self, X: Mapping[str, Any], modalities: Sequence[str] | None = None, representation: str = "concat",
                  space: str = "representation", batch_size: int = 1024) -> np.ndarray:
        """Representations of the given modalities: ``concat`` (default), ``fused``, ``component:<name>``;
        ``space="embedding"`` returns the concatenated objective-space embeddings instead."""
        from mmib.errors import UnknownNameError
        from mmib.eval.representations import method_representation

        method = self._check_fitted()
        method.eval()
        if space not in ("representation", "embedding"):
            raise UnknownNameError("space of transform", str(space), ["representation", "embedding"])
        if not isinstance(batch_size, int) or batch_size < 1:
            raise MMIBError(f"transform: batch_size must be a positive integer, got {batch_size!r}")
        mods, arrays = self._given_modalities(X, modalities, "transform")
        n = len(arrays[mods[0]])
        out = []
        for s in range(0, n, batch_size):
            b = self._batch({m: arrays[m][s : s + batch_size] for m in mods}, checked=True)
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
        if X is None:
            where = "evaluate on the fit data's test split"
        else:
            where = "evaluate(X, y)"
            xte = self.transform(X, modalities)
            yte = eval_labels(dm.spec, getattr(self, "classes_", None), y, len(xte), f"{where}: ")
        xtr, ytr = extract(method, dm, "train", modalities)
        xva, yva = extract(method, dm, "val", modalities)
        if X is None:
            xte, yte = extract(method, dm, "test", modalities)
        if dm.spec.task == "classification":
            warn_single_class(yte, where)
        return train_probe(xtr, ytr, xva, yva, xte, yte, dm.spec.task, dm.spec.n_classes,
                           ProbeConfig(kind=probe, seed=seed))

    def _given_modalities(self, X: Any, modalities: Sequence[str] | None, who: str
                          ) -> tuple[list[str], dict[str, Any]]:
        """The requested modalities (default: those of ``X``) and their checked arrays; errors name ``who``."""
        if not isinstance(X, Mapping):
            raise DataValidationError(f"{who}: X must be a dict {{modality name: array (N, ...)}}, got "
                                      f"{type(X).__name__}")
        mods = self.spec_.check_modalities(modalities if modalities is not None else [str(k) for k in X])
        missing = [m for m in mods if m not in X]
        if missing:
            raise DataValidationError(f"{who}: modality {missing} requested but not given in X")
        return mods, checked_arrays(self.spec_, {m: X[m] for m in mods}, f"{who}: ")

    def _evaluate_on_arrays(self, X: Mapping[str, Any], y: Any, probe: str, modalities: Sequence[str] | None,
                            seed: int) -> dict[str, float]:
        """The probe trained and tested on a seeded split of labelled arrays (no fit data at hand)."""
        from mmib.data.datamodule import split_indices
        from mmib.eval.probe import ProbeConfig, train_probe

        mods, given = self._given_modalities(X, modalities, "evaluate(X, y)")
        ya = as_labels(y, "evaluate(X, y): ")
        classes = getattr(self, "classes_", None)
        if ya.dtype.kind == "U":  # class names: the fit's classes if known, else their sorted order here
            if self.spec_.task == "regression":
                raise DataValidationError("evaluate(X, y): labels y: the model was fit for regression; expected "
                                          "numeric targets, got class names (strings)")
            ya = (encode_names(ya, classes, "evaluate(X, y): ") if classes is not None
                  else np.unique(ya, return_inverse=True)[1].reshape(-1))  # fmt: skip
        task = self.spec_.task if self.spec_.task != "none" else None
        spec = infer_spec(given, ya, name="evaluate", kinds={m: self.spec_.modality(m).kind for m in mods}, task=task)
        ds = MultimodalDataset(spec, given, y=ya)  # validates (X, y): lengths, NaN/inf, label shape
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
        if spec.task == "classification":
            warn_single_class(ya[idx["test"]], "evaluate(X, y) on its seeded test split")
        return train_probe(Z[idx["train"]], ya[idx["train"]], Z[idx["val"]], ya[idx["val"]], Z[idx["test"]],
                           ya[idx["test"]], spec.task, n_classes, ProbeConfig(kind=probe, seed=seed))

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model to one file in a data-only format (safetensors: the weights and normalization
        statistics as tensors, the configuration as JSON in the header, and a digest of both). Loading it never
        executes code, and :meth:`load` detects a file altered on disk."""
        from mmib.utils.io import atomic_path
        from mmib.utils.modelfile import write_model_file

        method = self._check_fitted()
        info = {"overrides": list(self._overrides), "method_name": self.method_name,
                "hyper_parameters": to_container(dict(method.hparams)), "spec": self.spec_.to_dict(),
                "classes": None if getattr(self, "classes_", None) is None else [str(c) for c in self.classes_]}
        with atomic_path(path) as tmp:  # never a half-written model file
            write_model_file(tmp, info, method.state_dict(), self.normalization_)

    @classmethod
    def load(cls, path: str | os.PathLike) -> MultimodalModel:
        """Load a model written by :meth:`save`. Never executes code from the file; a file that is not an mmib model,
        was altered, or was written by an mmib whose models cannot be read safely gives a one-line error naming it."""
        from mmib.methods.registry import build_method
        from mmib.utils.modelfile import read_model_file

        info, state, normalization = read_model_file(path)
        self = cls.__new__(cls)
        try:
            self.method_name = info["method_name"]
            # a model file is data, never permission: where to write and whether to move runs aside is decided by
            # whoever loads it, so the saving machine's run_dir/name/overwrite/resume settings are dropped
            self._overrides = [o for o in map(str, info["overrides"])
                               if o.split("=", 1)[0].lstrip("+~") not in _MACHINE_KEYS]
            import tempfile

            self._overrides.append(f"run_dir={tempfile.mkdtemp(prefix='mmib-')}")
            hp = info["hyper_parameters"]
            self.cfg = compose_config(self._overrides)
            self.spec_ = DatasetSpec.from_dict(info["spec"])
            self.method_ = build_method(hp["method_name"], self.spec_, hp["cfg"], hp["encoder_cfg"])
        except MMIBError as e:
            raise MMIBError(f"'{path}': {e}") from None
        except (KeyError, TypeError, ValueError) as e:
            raise MMIBError(f"'{path}': not an mmib model file (its configuration lacks or garbles {e}); "
                            "expected a file written by MultimodalModel.save") from None
        try:
            self.method_.load_state_dict(state)
        except RuntimeError as e:
            first = (str(e).strip().splitlines() or ["state mismatch"])[0]
            raise MMIBError(f"'{path}': its weights do not fit method '{self.method_name}' ({first})") from None
        self.method_.eval()
        self.normalization_ = normalization
        classes = info.get("classes")
        self.classes_ = None if classes is None else np.asarray(classes)
        self._own_run_dir = True
        self.run_dir_ = None
        self.datamodule_ = None  # evaluate() after load needs (X, y)
        self.metrics_ = None
        return self

    def __repr__(self) -> str:
        c = to_container(self.cfg)
        return f"MultimodalModel(method={self.method_name!r}, max_epochs={c['trainer']['max_epochs']}, fitted={self.method_ is not None})"
