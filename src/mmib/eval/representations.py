"""Getting representations out of any method through the Method interface only."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mmib.data.datamodule import MultimodalDataModule
from mmib.errors import MMIBError
from mmib.methods.base import Method

REPRESENTATIONS = ("concat", "fused", "component:<name>", "raw")


@torch.no_grad()
def method_representation(method: Method, batch: dict, modalities: Sequence[str] | None = None,
                          representation: str = "concat") -> torch.Tensor:
    """One representation of a batch: ``concat`` of the per-modality representations, the method's ``fused``
    one, ``component:<name>``, or ``raw`` (the concatenated input features, flattened)."""
    if representation == "concat":
        reps = method.embed(batch, modalities, space="representation")
        return torch.cat([reps[m] for m in reps], dim=1)
    if representation == "fused":
        return method.fuse(batch, modalities)
    if representation.startswith("component:"):
        name = representation.split(":", 1)[1]
        comps = method.components(batch, modalities)
        if name not in comps:
            from mmib.errors import UnknownNameError

            raise UnknownNameError(f"component of method '{method.name}'", name, list(comps))
        return comps[name]
    raise MMIBError(f"unknown representation '{representation}'; valid: {', '.join(REPRESENTATIONS)}")


def raw_representation(batch: dict, modalities: Sequence[str]) -> torch.Tensor:
    return torch.cat([batch["x"][m].reshape(batch["x"][m].shape[0], -1) for m in modalities], dim=1)


@torch.no_grad()
def extract(method: Method | None, dm: MultimodalDataModule, split: str, modalities: Sequence[str] | None = None,
            representation: str = "concat", batch_size: int = 512) -> tuple[np.ndarray, np.ndarray | None]:
    """(features, targets) of a whole split; ``method=None`` or ``representation="raw"`` gives raw features."""
    mods = dm.spec.check_modalities(modalities)
    if method is not None:
        method.eval()
    feats, ys = [], []
    idx = dm.indices[split]
    for start in range(0, len(idx), batch_size):
        batch = dm.dataset.get_batch(idx[start : start + batch_size])
        if method is None or representation == "raw":
            f = raw_representation(batch, mods)
        else:
            batch = _to_device(batch, method.device)
            f = method_representation(method, batch, mods, representation)
        feats.append(f.detach().float().cpu().numpy())
        if "y" in batch:
            ys.append(batch["y"].cpu().numpy())
    x = np.concatenate(feats)
    if not np.isfinite(x).all():
        raise MMIBError(f"the {representation} representation of split '{split}' holds NaN or inf")
    return x, (np.concatenate(ys) if ys else None)


def _to_device(batch: dict, device: torch.device) -> dict:
    out = {}
    for k, v in batch.items():
        if isinstance(v, dict):
            out[k] = {kk: vv.to(device) for kk, vv in v.items()}
        elif isinstance(v, torch.Tensor):
            out[k] = v.to(device)
        else:
            out[k] = v
    return out
