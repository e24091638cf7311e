"""Lightning data module: seeded train/val/test splits, standardization fitted on train, batched loaders."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler, Subset

from mmib.data.dataset import DataValidationError, DataWarning, MultimodalDataset, collate_multimodal
from mmib.data.noise import check_train_label_noise, flip_labels

SPLITS = ("train", "val", "test")
#: where a Lightning checkpoint keeps the data module's state (:meth:`MultimodalDataModule.state_dict`): Lightning
#: stores it under the class's qualified name
CHECKPOINT_KEY = "MultimodalDataModule"
#: the per-feature (per-channel) shape of the statistics of each kind (see :func:`fit_normalization`)
_STAT_SHAPE = {"vector": (-1,), "sequence": (1, -1), "signal": (-1, 1), "image": (-1, 1, 1)}


def split_indices(
    ds: MultimodalDataset,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    split_by: str = "auto",
    stratify: bool = True,
) -> dict[str, np.ndarray]:
    """Seeded split of a data set into train/val/test indices.

    ``split_by``: ``predefined`` (the data set's own ``split``), ``group`` (whole groups, e.g. subjects, go to one
    split), ``random`` (stratified by class for classification when ``stratify``), or ``auto`` (predefined if the
    data set has one, else group if it has groups, else random).
    """
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataValidationError(
            f"split fractions: expected val_fraction, test_fraction >= 0 with a sum < 1, got "
            f"{val_fraction}, {test_fraction}"
        )
    if split_by not in ("auto", "predefined", "group", "random"):
        raise DataValidationError(f"split_by: expected auto|predefined|group|random, got {split_by!r}")
    if split_by == "auto":
        split_by = "predefined" if ds.split is not None else ("group" if ds.groups is not None else "random")
    rng = np.random.default_rng(seed)
    n = len(ds)
    if split_by == "predefined":
        if ds.split is None:
            raise DataValidationError(f"data set '{ds.spec.name}' has no predefined split; use split_by=random|group")
        out = {s: np.flatnonzero(ds.split == s) for s in SPLITS}
        if len(out["val"]) == 0 and val_fraction > 0:  # carve a validation set from train
            tr = rng.permutation(out["train"])
            k = max(1, int(round(val_fraction * len(tr))))
            out = {"train": np.sort(tr[k:]), "val": np.sort(tr[:k]), "test": out["test"]}
    elif split_by == "group":
        if ds.groups is None:
            raise DataValidationError(f"data set '{ds.spec.name}' has no groups; use split_by=random")
        groups = np.unique(ds.groups)
        if len(groups) < 3:
            raise DataValidationError(
                f"group split of '{ds.spec.name}': needs >= 3 groups for train/val/test, got {len(groups)}"
            )
        perm = rng.permutation(groups)
        n_test = max(1, int(round(test_fraction * len(groups)))) if test_fraction > 0 else 0
        n_val = max(1, int(round(val_fraction * len(groups)))) if val_fraction > 0 else 0
        parts = {"test": perm[:n_test], "val": perm[n_test : n_test + n_val], "train": perm[n_test + n_val :]}
        out = {s: np.flatnonzero(np.isin(ds.groups, g)) for s, g in parts.items()}
    else:
        strata = ds.y.numpy() if (stratify and ds.y is not None and ds.spec.task == "classification") else np.zeros(n, int)
        out = {s: [] for s in SPLITS}
        for c in np.unique(strata):
            idx = rng.permutation(np.flatnonzero(strata == c))
            n_test = int(round(test_fraction * len(idx)))
            n_val = int(round(val_fraction * len(idx)))
            out["test"].append(idx[:n_test])
            out["val"].append(idx[n_test : n_test + n_val])
            out["train"].append(idx[n_test + n_val :])
        out = {s: np.sort(np.concatenate(v)) for s, v in out.items()}
    if len(out["train"]) == 0:
        raise DataValidationError(f"{_where(ds, split_by)}: the train split is empty ({_counts(out)})")
    if len(out["test"]) == 0 and (split_by == "predefined" or test_fraction > 0):  # not when asked for no test set
        fix = ("add 'test' rows to the split array, or split randomly with data.split_by=random"
               if split_by == "predefined" else "give more samples or a larger data.test_fraction")
        warnings.warn(f"{_where(ds, split_by)}: the test split is empty ({_counts(out)}): test metrics and "
                      f"`mmib eval` have nothing to test on; {fix}", DataWarning, stacklevel=2)
    return {s: np.asarray(v, dtype=np.int64) for s, v in out.items()}


def _where(ds: MultimodalDataset, split_by: str) -> str:
    """Who decided the split: the data set's split file (key 'split') or the seeded split of the data module."""
    name = f"data set '{ds.spec.name}'"
    if split_by == "predefined":
        return f"{ds.source}: key 'split'" if ds.source else f"{name}: its predefined split"
    return f"{name}: the {split_by} split"


def _counts(out: dict[str, Any]) -> str:
    return ", ".join(f"{len(out[s])} {s}" for s in SPLITS)


def fit_normalization(ds: MultimodalDataset, indices: np.ndarray, eps: float = 1e-6) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Per-feature (vectors, sequences) or per-channel (signals, images) mean/std over the given samples.

    Only samples where the modality is present count. Constant features get std 1 (no division by ~0). The
    statistics are those of the raw data even when ``ds`` already carries a normalization (a data set reused by a
    second data module: fitting on already-normalized values would give ≈ (0, 1) and undo the standardization).
    """
    previous, ds.normalization = ds.normalization, {}
    try:
        return _fit_normalization(ds, indices, eps)
    finally:
        ds.normalization = previous


def _fit_normalization(ds: MultimodalDataset, indices: np.ndarray, eps: float) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    stats = {}
    for ms in ds.spec.modalities:
        present = indices[ds.mask[ms.name].numpy()[indices]]
        if len(present) == 0:
            continue
        # reduce over samples + all axes except the feature/channel axis
        sums = None
        sq = None
        count = 0
        for start in range(0, len(present), 4096):
            t = ds._modality_batch(ms.name, torch.as_tensor(present[start : start + 4096])).double()
            if ms.kind == "vector":
                dims: tuple[int, ...] = (0,)
            elif ms.kind == "sequence":
                dims = (0, 1)
            elif ms.kind == "signal":
                dims = (0, 2)
            else:
                dims = (0, 2, 3)
            s, s2 = t.sum(dim=dims), (t * t).sum(dim=dims)
            sums = s if sums is None else sums + s
            sq = s2 if sq is None else sq + s2
            count += t.numel() // s.numel()
        mean = sums / count
        var = (sq / count - mean * mean).clamp_min(0)
        std = var.sqrt()
        if len(present) > 1 and bool((std <= eps * mean.abs().clamp_min(1.0)).all()):
            warnings.warn(f"modality '{ms.name}' of data set '{ds.spec.name}' is constant over the {len(present)} "
                          "training samples: it carries no information (it is 0 after standardization)",
                          DataWarning, stacklevel=3)
        std = torch.where(std < eps, torch.ones_like(std), std)
        shape = _STAT_SHAPE[ms.kind]
        stats[ms.name] = (mean.float().reshape(shape), std.float().reshape(shape))
    return stats


def normalization_state(normalization: Mapping[str, tuple[torch.Tensor, torch.Tensor]]) -> dict[str, dict[str, torch.Tensor]]:
    """The statistics as checkpoint data: ``{modality: {"mean": tensor, "std": tensor}}`` (plain tensors, so a checkpoint
    still loads with ``weights_only=True``)."""
    return {str(m): {"mean": mean.detach().cpu().clone(), "std": std.detach().cpu().clone()}
            for m, (mean, std) in normalization.items()}


def checkpoint_normalization(ckpt: Mapping[str, Any], source: str = "checkpoint"
                             ) -> dict[str, tuple[torch.Tensor, torch.Tensor]] | None:
    """The normalization statistics a checkpoint written by the engine carries (its data module's state), or ``None``
    for a checkpoint written before they were stored (the caller refits them on the train split).

    Raises:
        DataValidationError: stored statistics that are not ``(mean, std)`` tensor pairs of one shape (names
            ``source`` and the modality).
    """
    state = ckpt.get(CHECKPOINT_KEY)
    if not isinstance(state, Mapping) or "normalization" not in state:
        return None
    stored = state["normalization"]
    if not isinstance(stored, Mapping):
        raise DataValidationError(f"{source}: its normalization statistics are a {type(stored).__name__}, expected a "
                                  "mapping of modality -> {mean, std}")
    out = {}
    for name, ms in stored.items():
        mean, std = (ms.get("mean"), ms.get("std")) if isinstance(ms, Mapping) else (None, None)
        if not (isinstance(mean, torch.Tensor) and isinstance(std, torch.Tensor) and mean.shape == std.shape):
            raise DataValidationError(f"{source}: the normalization statistics of modality '{name}' are not a mean and "
                                      "a std tensor of one shape")
        out[str(name)] = (mean.float(), std.float())
    return out


def _checked_normalization(ds: MultimodalDataset, normalization: Mapping[str, tuple[torch.Tensor, torch.Tensor]]
                           ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Given statistics (e.g. a checkpoint's) checked against the data set: known modalities, one value per feature
    (vector, sequence) or channel (signal, image), positive finite std; reshaped as :func:`fit_normalization`'s."""
    out = {}
    for name, (mean, std) in normalization.items():
        if name not in ds.spec.modality_names:
            raise DataValidationError(f"normalization statistics for modality '{name}', which data set "
                                      f"'{ds.spec.name}' does not have (it has {', '.join(ds.spec.modality_names)})")
        ms = ds.spec.modality(name)
        n = int(ms.shape[-1] if ms.kind == "sequence" else ms.shape[0])
        if mean.numel() != n or std.numel() != n:
            raise DataValidationError(f"normalization statistics of modality '{name}': {mean.numel()} values, its "
                                      f"{ms.kind} data have {n} {'channels' if ms.kind in ('signal', 'image') else 'features'}")
        if not bool(torch.isfinite(mean).all()) or not bool((std > 0).all()) or not bool(torch.isfinite(std).all()):
            raise DataValidationError(f"normalization statistics of modality '{name}': mean must be finite and std "
                                      "finite and > 0")
        shape = _STAT_SHAPE[ms.kind]
        out[name] = (mean.float().reshape(shape), std.float().reshape(shape))
    return out


class EpochShuffledBatchSampler(Sampler[list[int]]):
    """Batches of a seeded permutation that depends only on (seed, epoch), split across processes.

    * ``set_epoch(e)`` (called by Lightning before each epoch) picks the permutation, so a run resumed from a
      checkpoint sees exactly the batches an uninterrupted run sees;
    * ``skip_once(epoch, k)`` drops the first ``k`` batches of that epoch (resuming mid-epoch);
    * with ``world_size > 1`` each process takes every ``world_size``-th sample of the permutation (padded by
      repetition to equal length, as :class:`torch.utils.data.DistributedSampler` does).
    """

    def __init__(self, n: int, batch_size: int, drop_last: bool, seed: int, rank: int = 0, world_size: int = 1):
        self.n, self.batch_size, self.drop_last, self.seed = n, batch_size, drop_last, seed
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self._skip: tuple[int, int] | None = None
        self.sampler = self  # Lightning calls batch_sampler.sampler.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def skip_once(self, epoch: int, batches: int) -> None:
        self._skip = (int(epoch), int(batches))

    def _local(self) -> list[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        perm = torch.randperm(self.n, generator=g).tolist()
        if self.world_size > 1:
            total = -(-self.n // self.world_size) * self.world_size
            perm = (perm + perm[: total - self.n])[self.rank : total : self.world_size]
        return perm

    def __len__(self) -> int:
        m = len(self._local()) if self.world_size > 1 else self.n
        return m // self.batch_size if self.drop_last else -(-m // self.batch_size)

    def __iter__(self):
        perm = self._local()
        batches = [perm[i : i + self.batch_size] for i in range(0, len(perm), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        start = 0
        if self._skip is not None and self._skip[0] == self.epoch:
            start = self._skip[1]
            self._skip = None
        yield from batches[start:]


class MultimodalDataModule(L.LightningDataModule):
    """Seeded splits, standardization fitted on the train split only, and batched loaders.

    Args:
        dataset: the full data set.
        batch_size: batch size of every loader.
        val_fraction, test_fraction, split_by, stratify: see :func:`split_indices`.
        standardize: fit per-feature/per-channel mean and std on train and apply them to every split.
        normalization: statistics fitted before (a checkpoint's, :func:`checkpoint_normalization`), used instead of
            fitting them again when ``standardize``; ``None`` fits them on the train split.
        seed: seed of the split and of the training loader's shuffling.
        drop_last: drop the last incomplete training batch (contrastive objectives want full batches).
        num_workers: DataLoader workers.
        train_label_noise: probability that a TRAINING label is replaced by a uniformly drawn other class (seeded by
            ``seed``; val/test untouched; :mod:`mmib.data.noise`); 0 = the labels as given. Classification only.
            The data set's ``y`` then holds the noisy training labels (every consumer of the train split sees them)
            and ``clean_y`` the labels as given; :attr:`flipped` lists the flipped rows.
    """

    def __init__(
        self,
        dataset: MultimodalDataset,
        batch_size: int = 64,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        split_by: str = "auto",
        stratify: bool = True,
        standardize: bool = True,
        seed: int = 0,
        drop_last: bool = True,
        num_workers: int = 0,
        normalization: Mapping[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
        train_label_noise: float = 0.0,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise DataValidationError(f"batch_size must be >= 1, got {batch_size}")
        self.train_label_noise = check_train_label_noise(train_label_noise, dataset.spec, dataset.y is not None)
        if dataset.clean_y is not None:  # a data set noised by an earlier data module: start from the labels as given
            dataset.y, dataset.clean_y = dataset.clean_y, None
        self.dataset = dataset
        self.spec = dataset.spec
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.num_workers = int(num_workers)
        self.standardize = bool(standardize)
        self.indices = split_indices(dataset, val_fraction, test_fraction, seed, split_by, stratify)
        self.flipped = np.empty(0, dtype=np.int64)
        if self.train_label_noise > 0:
            dataset.clean_y = dataset.y
            dataset.y, self.flipped = flip_labels(dataset.y, self.indices["train"], self.train_label_noise,
                                                  int(dataset.spec.n_classes), self.seed)
        if self.standardize:
            dataset.normalization = (fit_normalization(dataset, self.indices["train"]) if normalization is None
                                     else _checked_normalization(dataset, normalization))
        else:
            dataset.normalization = {}
        self.normalization = dataset.normalization  # what this module applies (checkpoints store it)

    def split(self, name: str) -> Subset:
        if name not in SPLITS:
            raise DataValidationError(f"unknown split '{name}'; valid: {', '.join(SPLITS)}")
        return Subset(self.dataset, self.indices[name].tolist())

    def split_batch(self, name: str) -> dict[str, Any]:
        """The whole split as one batch (in memory)."""
        return self.dataset.get_batch(self.indices[name])

    def _loader(self, name: str, shuffle: bool) -> DataLoader:
        sub = self.split(name)
        if len(sub) == 0:
            raise DataValidationError(f"data set '{self.spec.name}': the {name} split is empty")
        common = {"collate_fn": collate_multimodal, "num_workers": self.num_workers,
                  "persistent_workers": self.num_workers > 0}
        if not shuffle:
            return DataLoader(sub, batch_size=self.batch_size, shuffle=False, **common)
        trainer = getattr(self, "trainer", None)
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        per_rank = -(-len(sub) // world)
        drop_last = self.drop_last and per_rank > self.batch_size
        self._train_sampler = EpochShuffledBatchSampler(len(sub), self.batch_size, drop_last, self.seed, rank, world)
        if self._resume_state is not None:
            self._train_sampler.skip_once(*self._resume_state)
            self._resume_state = None
        return DataLoader(sub, batch_sampler=self._train_sampler, **common)

    # -- crash safety: the position in the epoch travels with the checkpoint (Lightning saves this state)
    _resume_state: tuple[int, int] | None = None
    _train_sampler: EpochShuffledBatchSampler | None = None

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of the data: the normalization statistics (so that loading a run does not refit
        them, :func:`checkpoint_normalization`) and, during training, the position in the epoch."""
        state: dict[str, Any] = {"normalization": normalization_state(self.normalization)} if self.standardize else {}
        trainer = getattr(self, "trainer", None)
        if trainer is None or self._train_sampler is None:
            return state
        # checkpoints are written in on_train_batch_end, after "processed" and before "completed" is counted
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        return {**state, "epoch": int(trainer.current_epoch), "batches_done": int(done),
                "batches_per_epoch": len(self._train_sampler)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # the statistics in ``state`` are those this module fitted again (same data, seed and split): resuming keeps
        # fitting them, so that a checkpoint written before they were stored resumes the same way
        if state and "batches_done" in state and 0 < state["batches_done"] < state["batches_per_epoch"]:
            self._resume_state = (state["epoch"], state["batches_done"])

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def summary(self) -> dict[str, int]:
        return {s: len(v) for s, v in self.indices.items()}
