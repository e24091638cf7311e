"""Getting representations out of any method through the Method interface only.

Representation names (``representation=...`` everywhere in :mod:`mmib.eval`):

==================== =====================================================================================
``concat``           the concatenation of the per-modality representations ``embed(batch, mods)`` (default)
``rep:<m>``          modality ``m``'s representation, from ``embed(batch, mods)``
``emb:<m>``          modality ``m``'s embedding in the objective's space, ``embed(batch, mods, "embedding")``
``fused``            the method's fused representation ``fuse(batch, mods)`` (methods with a fusion module)
``component:<name>`` a named component ``components(batch, mods)[name]`` (e.g. R, U_eeg, S)
``raw``, ``raw:<m>`` the (standardized) input features, flattened — the reference every method should beat
``predict``          not a representation: the method's own predictions ``predict(batch, mods)`` (supervised)
==================== =====================================================================================

Only samples where every requested modality is present (``batch["mask"]``) are used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from mmib.data.datamodule import MultimodalDataModule
from mmib.data.dataset import batch_to_device
from mmib.errors import MMIBError, UnknownNameError
from mmib.methods.base import Method

REPRESENTATIONS = ("concat", "rep:<modality>", "emb:<modality>", "fused", "component:<name>", "raw", "raw:<modality>",
                   "predict")


class MissingCapabilityError(MMIBError):
    """The method does not implement an optional part of the interface that a protocol asked for."""


def needs_capability(representation: str) -> str | None:
    """The optional Method capability a representation needs (``fuse``, ``components``) or None."""
    if representation == "fused":
        return "fuse"
    if representation == "predict":
        return "predict"
    if representation.startswith("component:"):
        return "components"
    return None


def check_representation(method: Method | None, representation: str, modalities: Sequence[str]) -> None:
    """Raise a clear error when a representation name is unknown or the method cannot produce it."""
    kind, _, arg = representation.partition(":")
    if representation in ("concat", "fused", "raw", "predict") or kind in ("rep", "emb", "raw", "component"):
        if kind in ("rep", "emb", "raw") and arg and arg not in modalities:
            raise UnknownNameError(f"modality of representation '{representation}'", arg, list(modalities))
        if kind == "component" and not arg:
            raise MMIBError("representation 'component:<name>' needs a component name, e.g. component:S")
    else:
        raise MMIBError(f"unknown representation '{representation}'; valid: {', '.join(REPRESENTATIONS)}")
    cap = needs_capability(representation)
    if cap is not None:
        if method is None:
            raise MMIBError(f"representation '{representation}' needs a method (raw features have none)")
        if not type(method).capabilities()[cap]:
            what = {"fuse": "fused representation", "components": "named components",
                    "predict": "predictions"}[cap]
            raise MissingCapabilityError(f"method '{method.name}' has no {what} (representation '{representation}')")


@torch.no_grad()
def method_representations(method: Method | None, batch: dict, modalities: Sequence[str],
                            representations: Sequence[str]) -> dict[str, torch.Tensor]:
    """Several representations of one batch, calling each interface function at most once."""
    out: dict[str, torch.Tensor] = {}
    reps = embs = comps = None
    for r in representations:
        kind, _, arg = r.partition(":")
        if kind == "raw":
            out[r] = raw_representation(batch, [arg] if arg else modalities)
            continue
        if method is None:
            raise MMIBError(f"representation '{r}' needs a method")
        if r == "concat" or kind == "rep":
            if reps is None:
                reps = method.embed(batch, modalities, space="representation")
            out[r] = torch.cat([reps[m] for m in modalities], 1) if r == "concat" else reps[arg]
        elif kind == "emb":
            if embs is None:
                embs = method.embed(batch, modalities, space="embedding")
            out[r] = embs[arg]
        elif r == "fused":
            out[r] = method.fuse(batch, modalities)
        elif r == "predict":
            out[r] = method.predict(batch, modalities)
        elif kind == "component":
            if comps is None:
                comps = method.components(batch, modalities)
            if arg not in comps:
                raise UnknownNameError(f"component of method '{method.name}'", arg, list(comps))
            out[r] = comps[arg]
        else:
            raise MMIBError(f"unknown representation '{r}'; valid: {', '.join(REPRESENTATIONS)}")
        t = out[r]
        if not isinstance(t, torch.Tensor) or t.dim() < 1 or t.shape[0] != _batch_size(batch, modalities):
            raise MMIBError(f"method '{method.name}': representation '{r}' is not a (N, d) tensor for a batch of "
                            f"{_batch_size(batch, modalities)} samples (got {getattr(t, 'shape', type(t))})")
        out[r] = t.reshape(t.shape[0], -1)
    return out


def method_representation(method: Method, batch: dict, modalities: Sequence[str] | None = None,
                          representation: str = "concat") -> torch.Tensor:
    """One representation of a batch (see the module docstring for the names)."""
    mods = method.spec.check_modalities(modalities if modalities is not None else list(batch["x"]))
    check_representation(method, representation, mods)
    return method_representations(method, batch, mods, [representation])[representation]


def raw_representation(batch: dict, modalities: Sequence[str]) -> torch.Tensor:
    return torch.cat([batch["x"][m].reshape(batch["x"][m].shape[0], -1) for m in modalities], dim=1)


def _batch_size(batch: dict, modalities: Sequence[str]) -> int:
    return int(batch["x"][modalities[0]].shape[0])


@dataclass
class SplitFeatures:
    """Representations of one split: ``features[name]`` (N, d) arrays, targets, latents and sample indices."""

    features: dict[str, np.ndarray]
    y: np.ndarray | None
    latents: dict[str, np.ndarray] = field(default_factory=dict)
    index: np.ndarray | None = None
    n_dropped: int = 0


def select_present(batch: dict, modalities: Sequence[str]) -> torch.Tensor | None:
    """Boolean rows where every modality is present, or None when all are."""
    masks = batch.get("mask") or {}
    keep = None
    for m in modalities:
        if m in masks and not bool(masks[m].all()):
            keep = masks[m] if keep is None else keep & masks[m]
    return keep


def _subset_batch(batch: dict, keep: torch.Tensor) -> dict:
    out = {}
    for k, v in batch.items():
        if isinstance(v, dict):
            out[k] = {kk: vv[keep] for kk, vv in v.items()}
        elif isinstance(v, torch.Tensor):
            out[k] = v[keep]
        else:
            out[k] = v
    return out


@torch.no_grad()
def extract_split(method: Method | None, dm: MultimodalDataModule, split: str, modalities: Sequence[str] | None,
                  representations: Sequence[str], batch_size: int = 512) -> SplitFeatures:
    """Representations of a whole split (only samples with every requested modality present)."""
    mods = dm.spec.check_modalities(modalities)
    for r in representations:
        check_representation(method, r, mods)
    if method is not None:
        method.eval()
    idx = dm.indices[split]
    if len(idx) == 0:
        raise MMIBError(f"data set '{dm.spec.name}': the {split} split is empty")
    feats: dict[str, list[np.ndarray]] = {r: [] for r in representations}
    ys, lat, kept = [], {}, []
    dropped = 0
    for start in range(0, len(idx), batch_size):
        batch = dm.dataset.get_batch(idx[start : start + batch_size])
        keep = select_present(batch, mods)
        if keep is not None:
            dropped += int((~keep).sum())
            if not bool(keep.any()):
                continue
            batch = _subset_batch(batch, keep)
        if method is not None:
            batch = batch_to_device(batch, method.device)
        out = method_representations(method, batch, mods, representations)
        for r, t in out.items():
            feats[r].append(t.detach().float().cpu().numpy())
        if "y" in batch:
            ys.append(batch["y"].cpu().numpy())
        for k, v in (batch.get("latents") or {}).items():
            lat.setdefault(k, []).append(v.cpu().numpy())
        kept.append(batch["index"].cpu().numpy())
    if not kept:
        raise MMIBError(f"split '{split}': no sample has all of {', '.join(mods)} present")
    arrays = {r: np.concatenate(v) for r, v in feats.items()}
    for r, a in arrays.items():
        if not np.isfinite(a).all():
            who = "raw features" if r.startswith("raw") else f"method '{method.name}'"
            raise MMIBError(f"the '{r}' representation ({who}) of split '{split}' holds NaN or inf")
    return SplitFeatures(arrays, np.concatenate(ys) if ys else None, {k: np.concatenate(v) for k, v in lat.items()},
                         np.concatenate(kept), dropped)


def extract(method: Method | None, dm: MultimodalDataModule, split: str, modalities: Sequence[str] | None = None,
            representation: str = "concat", batch_size: int = 512) -> tuple[np.ndarray, np.ndarray | None]:
    """(features, targets) of a whole split; ``method=None`` or ``representation="raw"`` gives raw features."""
    rep = "raw" if method is None else representation
    sf = extract_split(method, dm, split, modalities, [rep], batch_size)
    return sf.features[rep], sf.y
