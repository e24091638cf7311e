"""Checkpoint files that never execute code and that prove they are intact.

* Every load is ``torch.load(..., weights_only=True)``: a checkpoint can hold tensors, numbers, strings and builtin
  containers, nothing that unpickling could run. A crafted file fails with one line naming it.
* Every checkpoint the engine writes carries a digest (SHA-256) of its whole content — tensors byte for byte, every
  other value by its representation — stored inside the file under :data:`DIGEST_KEY`. The digest is part of the file
  that is renamed into place atomically, so a crash between two writes can never look like corruption; a flipped
  byte inside a tensor, or an edited value, makes :func:`read_checkpoint` fail with one line naming the file.
  Checkpoints written before digests existed (no :data:`DIGEST_KEY`) load without the check.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from typing import Any

from mmib.errors import MMIBError

#: where a checkpoint stores the digest of the rest of its content
DIGEST_KEY = "mmib_digest"
#: a second marker, covered by the digest: a checkpoint that has it must have a digest too (a corrupted byte that
#: renames the digest key cannot pass the file off as one written before digests existed)
VERSION_KEY = "mmib_checkpoint_format"


class CorruptCheckpointError(MMIBError):
    """A checkpoint that cannot be read, is not a checkpoint, or whose content no longer matches its digest."""


def update_digest(h: Any, obj: Any) -> None:
    """Feed ``obj`` into the hash ``h``: tensors byte for byte (with dtype and shape), containers in order, every
    other value by its representation."""
    import torch

    if isinstance(obj, torch.Tensor):
        t = obj.detach()
        if t.is_sparse or t.is_quantized:
            t = t.to_dense() if t.is_sparse else t.dequantize()
        t = t.cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)};".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, Mapping):
        h.update(f"D{len(obj)};".encode())
        for k, v in obj.items():  # pickling keeps the insertion order: the same order after a round trip
            update_digest(h, k)
            update_digest(h, v)
    elif isinstance(obj, (list, tuple)):
        h.update(f"{'L' if isinstance(obj, list) else 'U'}{len(obj)};".encode())
        for v in obj:
            update_digest(h, v)
    elif isinstance(obj, (set, frozenset)):
        h.update(f"S{len(obj)};".encode())
        for r in sorted(repr(v) for v in obj):
            h.update(r.encode())
    else:  # numbers, strings, bytes, None, torch.dtype / torch.Size ...: their representation is exact
        h.update(f"V{type(obj).__name__}:{obj!r};".encode())


def content_digest(checkpoint: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of everything in ``checkpoint`` except its own digest entry."""
    h = hashlib.sha256()
    update_digest(h, {k: v for k, v in checkpoint.items() if k != DIGEST_KEY})
    return h.hexdigest()


def add_digest(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """Store the content digest in ``checkpoint`` (in place) and return it."""
    checkpoint[VERSION_KEY] = 2
    checkpoint[DIGEST_KEY] = {"algorithm": "sha256", "hex": content_digest(checkpoint)}
    return checkpoint


def verify_digest(checkpoint: Mapping[str, Any], path: str | os.PathLike) -> bool:
    """Check the stored digest; True if one was there and matched, False if the file predates digests. A mismatch
    raises :class:`CorruptCheckpointError` naming the file."""
    stored = checkpoint.get(DIGEST_KEY)
    if stored is None:
        if VERSION_KEY in checkpoint:
            raise CorruptCheckpointError(f"'{path}': the checkpoint's digest is missing although its format has one; "
                                         "the file is corrupted")
        return False
    if not isinstance(stored, Mapping) or stored.get("algorithm") != "sha256" or not isinstance(stored.get("hex"), str):
        raise CorruptCheckpointError(f"'{path}': the checkpoint's digest entry is malformed; the file is corrupted")
    if content_digest(checkpoint) != stored["hex"]:
        raise CorruptCheckpointError(
            f"'{path}': the checkpoint's content does not match its digest (the file was altered or corrupted on "
            "disk); use another checkpoint of the run (checkpoints/epoch*.ckpt, step*.ckpt) or train again")
    return True


def torch_load_safe(path: str | os.PathLike, map_location: str = "cpu", mmap: bool = False) -> Any:
    """``torch.load`` that never runs code from the file (``weights_only=True``); any failure is one line naming
    the file: a truncated or corrupted archive, or a pickle that asks for something other than plain data."""
    import pickle
    import warnings

    import torch

    try:
        with warnings.catch_warnings():  # a foreign pickle protocol: the refusal below says what matters
            warnings.filterwarnings("ignore", message=".*pickle protocol.*", category=UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except (MemoryError, KeyboardInterrupt):
        raise
    except FileNotFoundError:
        raise CorruptCheckpointError(f"'{path}': no such file") from None
    except IsADirectoryError:
        raise CorruptCheckpointError(f"'{path}' is a folder, expected a checkpoint file") from None
    except pickle.UnpicklingError as e:
        text = str(e)
        if "GLOBAL" in text or "Unsupported global" in text:
            # what the file asked for, e.g. "Unsupported global: GLOBAL posix.system"
            what = next((ln.strip() for ln in text.splitlines() if "Unsupported" in ln or "GLOBAL" in ln), "")
            raise CorruptCheckpointError(
                f"'{path}': refused to load: the file asks to run code or build objects that are not plain data "
                f"({what or 'not tensors, numbers, strings or containers'}); mmib never executes code from a "
                "checkpoint") from None
        detail = text.split("WeightsUnpickler error:", 1)[1] if "WeightsUnpickler error:" in text else text
        raise CorruptCheckpointError(f"'{path}': not a readable checkpoint (truncated or corrupted?): "
                                     f"{(detail.strip().splitlines() or [type(e).__name__])[0]}") from None
    except Exception as e:  # RuntimeError / OSError from the zip reader, EOFError, ...
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CorruptCheckpointError(f"'{path}': not a readable checkpoint (truncated or corrupted?): {reason}") from None


def read_checkpoint(path: str | os.PathLike, map_location: str = "cpu", mmap: bool = False,
                    verify: bool = True) -> dict[str, Any]:
    """Load a checkpoint dictionary safely (:func:`torch_load_safe`) and verify its digest (:func:`verify_digest`)."""
    ckpt = torch_load_safe(path, map_location=map_location, mmap=mmap)
    if not isinstance(ckpt, dict):
        raise CorruptCheckpointError(f"'{path}': not a readable checkpoint: holds a {type(ckpt).__name__}, expected "
                                     "a Lightning checkpoint dictionary")
    if verify:
        verify_digest(ckpt, path)
    return ckpt
