"""The file format of :meth:`mmib.MultimodalModel.save`: safetensors, data only.

One file: the method's ``state_dict`` (keys ``state_dict/<name>``) and the per-modality normalization statistics
(``normalization/<modality>/mean`` and ``/std``) as tensors; in the header's metadata, ``mmib_model`` (the format
version), ``info`` (JSON: config overrides, method name, hyperparameters, data spec) and ``digest`` (SHA-256 of the
info and of every tensor, byte for byte). Reading it never executes code; a flipped byte or an edited header fails
with one line naming the file.

Files written by mmib before this format (``torch.save`` pickles) are read with ``weights_only=True``: those hold
plain data and load, with a warning to save them again; anything else in such a file is refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Mapping
from typing import Any

import torch

from mmib.errors import MMIBError

FORMAT_VERSION = "1"
_SD, _NORM = "state_dict/", "normalization/"


def _digest(info_json: str, tensors: Mapping[str, torch.Tensor]) -> str:
    from mmib.utils.checkpoint import update_digest

    h = hashlib.sha256(info_json.encode())
    update_digest(h, {k: tensors[k] for k in sorted(tensors)})  # sorted: safetensors does not keep the order
    return h.hexdigest()


def _finite_json(obj: Any) -> Any:  # JSON has no inf/nan: keep them as strings the reader turns back
    if isinstance(obj, float) and not math.isfinite(obj):
        return {"__float__": repr(obj)}
    if isinstance(obj, Mapping):
        return {str(k): _finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_json(v) for v in obj]
    return obj


def _from_json(obj: Any) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__float__"}:
            return float(obj["__float__"])
        return {k: _from_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_from_json(v) for v in obj]
    return obj


def write_model_file(path: str | os.PathLike, info: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor],
                     normalization: Mapping[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    for k, v in state_dict.items():
        tensors[_SD + k] = v.detach().cpu().clone().contiguous()  # clone: tied weights share storage
    for m, (mean, std) in normalization.items():
        tensors[f"{_NORM}{m}/mean"] = torch.as_tensor(mean).detach().cpu().clone().contiguous()
        tensors[f"{_NORM}{m}/std"] = torch.as_tensor(std).detach().cpu().clone().contiguous()
    info_json = json.dumps(_finite_json(dict(info)), sort_keys=True)
    meta = {"mmib_model": FORMAT_VERSION, "info": info_json, "digest": _digest(info_json, tensors)}
    save_file(tensors, str(path), metadata=meta)


def _split(tensors: Mapping[str, torch.Tensor], path: Any) -> tuple[dict[str, torch.Tensor], dict[str, tuple]]:
    state = {k[len(_SD):]: v for k, v in tensors.items() if k.startswith(_SD)}
    norm: dict[str, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        if k.startswith(_NORM):
            m, _, which = k[len(_NORM):].rpartition("/")
            norm.setdefault(m, {})[which] = v
    bad = [m for m, d in norm.items() if set(d) != {"mean", "std"}]
    if bad:
        raise MMIBError(f"'{path}': normalization of modality {bad[0]!r} lacks its mean or std; the file is damaged")
    return state, {m: (d["mean"], d["std"]) for m, d in norm.items()}


def _read_legacy(path: Any) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, tuple]]:
    from mmib.utils.checkpoint import CorruptCheckpointError, torch_load_safe

    try:
        d = torch_load_safe(path)
    except CorruptCheckpointError as e:
        raise MMIBError(f"{e} (expected a model written by MultimodalModel.save; a model saved by an older mmib that "
                        "cannot be read safely must be loaded by that version and saved again)") from None
    keys = ("overrides", "method_name", "hyper_parameters", "state_dict", "spec", "normalization")
    if not isinstance(d, dict) or any(k not in d for k in keys):
        what = f"keys {sorted(map(str, d))[:8]}" if isinstance(d, dict) else f"a {type(d).__name__}"
        raise MMIBError(f"'{path}': not an mmib model file (it holds {what}); expected a file written by "
                        "MultimodalModel.save")
    warnings.warn(f"'{path}' was saved by an older mmib (torch pickle); it loaded safely, save it again to get the "
                  "current format (safetensors with a digest)", UserWarning, stacklevel=3)
    info = {k: d[k] for k in ("overrides", "method_name", "hyper_parameters", "spec")}
    norm = {m: (torch.as_tensor(v[0]), torch.as_tensor(v[1])) for m, v in dict(d["normalization"]).items()}
    return info, dict(d["state_dict"]), norm


def read_model_file(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, tuple]]:
    """(info, state_dict, normalization) of a model file; one-line :class:`MMIBError` naming ``path`` otherwise."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    p = os.fspath(path)
    if os.path.isdir(p):
        raise MMIBError(f"'{p}' is a folder, expected a model file written by MultimodalModel.save")
    try:
        with open(p, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise MMIBError(f"'{p}': cannot read the model file ({e.strerror or e})") from None
    if head[:2] == b"PK" or head[:1] == b"\x80":  # a torch.save zip archive or a raw pickle: the pre-1 format
        return _read_legacy(p)
    try:
        from safetensors import safe_open

        with safe_open(p, framework="pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(p)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise MMIBError(f"'{p}': not an mmib model file (neither safetensors nor a torch file: {reason}); expected "
                        "a file written by MultimodalModel.save") from None
    if meta.get("mmib_model") != FORMAT_VERSION or "info" not in meta or "digest" not in meta:
        raise MMIBError(f"'{p}': a safetensors file, but not an mmib model (format {meta.get('mmib_model')!r}, "
                        f"expected {FORMAT_VERSION!r} with info and digest)")
    if _digest(meta["info"], tensors) != meta["digest"]:
        raise MMIBError(f"'{p}': the model file's content does not match its digest (altered or corrupted on disk)")
    try:
        info = _from_json(json.loads(meta["info"]))
    except ValueError as e:
        raise MMIBError(f"'{p}': the model file's info is not valid JSON ({e})") from None
    state, norm = _split(tensors, p)
    return info, state, norm
