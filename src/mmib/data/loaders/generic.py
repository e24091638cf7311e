"""The generic container for users' own data: ``.npz``, HDF5, or a folder (``.npy`` per array, or shards).

Arrays (first axis = sample), by name:

* ``<modality>``: any other name is a modality (N, *per-sample shape*);
* ``y`` (optional): (N,) integer classes or (N,) / (N, k) regression targets;
* ``latent_<name>`` (optional): ground-truth latents (N,) or (N, k);
* ``split`` (optional): (N,) strings ``train`` / ``val`` / ``test`` (a fixed split);
* ``groups`` (optional): (N,) group ids (e.g. subjects) for group-wise splits;
* ``mask_<modality>`` (optional): (N,) bool presence mask; ``lengths_<modality>`` (optional): (N,) valid lengths;
* ``meta`` (optional): a JSON string (npz: a 0-d string array; HDF5: the root attribute ``meta``; folder:
  ``meta.json``): ``{"name", "task", "n_classes", "target_dim", "description", "latents": {name: n_values or 0},
  "modalities": {name: {"kind", "rate", "channels"}}}``; HDF5 datasets may also carry ``kind`` / ``rate`` /
  ``channels`` attributes.

Without metadata, the kind follows the per-sample rank (1 → vector, 2 → signal (C, T), 3 → image (C, H, W); a
``sequence`` (T, D) must be declared), and the task follows ``y`` (integers → classification with max + 1 classes,
floats → regression, absent → none).

Streaming: ``.npy`` files, *uncompressed* ``.npz`` members (``np.savez``, not ``savez_compressed``) and contiguous
uncompressed HDF5 datasets are memory-mapped, so modalities larger than RAM are read per batch. Compressed or
chunked arrays are read into memory; shards are concatenated into memory, or into memory-mapped files in
``cache_dir`` when given.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmib.data.dataset import DataValidationError, MultimodalDataset
from mmib.data.loaders._common import (
    allocate,
    build_dataset_from_file,
    check_choice,
    fail,
    finish,
    open_h5,
    resolve_path,
)
from mmib.data.registry import register_dataset
from mmib.data.spec import MODALITY_KINDS, TASK_TYPES, DatasetSpec, ModalitySpec

RESERVED = ("y", "split", "groups", "meta")
PREFIXES = ("latent_", "mask_", "lengths_")
GENERIC_SUFFIXES = (".npz", ".h5", ".hdf5")


# ------------------------------------------------------------------ memory-mapped readers
def npz_member(file: Path, zf: zipfile.ZipFile, key: str) -> np.ndarray:
    """A member of an ``.npz``: memory-mapped when stored uncompressed, else read into memory."""
    info = zf.getinfo(key + ".npy")
    if info.compress_type == zipfile.ZIP_STORED:
        with open(file, "rb") as f:
            f.seek(info.header_offset)
            local = f.read(30)
            if local[:4] == b"PK\x03\x04":
                name_len = int.from_bytes(local[26:28], "little")
                extra_len = int.from_bytes(local[28:30], "little")
                f.seek(info.header_offset + 30 + name_len + extra_len)
                version = np.lib.format.read_magic(f)
                if version == (1, 0):
                    shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
                else:
                    shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
                if not dtype.hasobject and int(np.prod(shape)) > 0:
                    return np.memmap(file, dtype=dtype, mode="r", offset=f.tell(), shape=shape,
                                     order="F" if fortran else "C")  # fmt: skip
    with zf.open(info) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def h5_array(file: Path, ds: Any) -> np.ndarray:
    """An HDF5 dataset: memory-mapped when contiguous and uncompressed, else read into memory."""
    if ds.chunks is None and ds.compression is None and ds.dtype.kind in "fiub" and ds.size > 0:
        offset = ds.id.get_offset()
        if offset is not None:
            return np.memmap(file, dtype=ds.dtype, mode="r", offset=offset, shape=ds.shape)
    a = ds[()]
    if isinstance(a, bytes):
        a = a.decode()
    return np.asarray(a)


def _read_container(file: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """All arrays of one ``.npz`` / HDF5 file (modalities possibly memory-mapped) and its metadata."""
    meta: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    if file.suffix == ".npz":
        try:
            zf = zipfile.ZipFile(file)
        except (zipfile.BadZipFile, OSError) as e:
            raise DataValidationError(f"{file}: not a readable .npz file ({e})") from e
        with zf:
            for name in zf.namelist():
                if not name.endswith(".npy"):
                    continue
                key = name[: -len(".npy")]
                try:
                    arrays[key] = npz_member(file, zf, key)
                except ValueError as e:  # object arrays need pickle: refused
                    raise fail(file, key, "a numeric or string array (no pickled objects)", str(e)) from e
        if "meta" in arrays:
            meta = _parse_meta(file, "meta", arrays.pop("meta"))
    else:
        with open_h5(file, "the generic HDF5 format") as f:
            for key, ds in f.items():
                if not hasattr(ds, "shape"):
                    raise fail(file, key, "a dataset (groups are not part of the generic format)", "a group")
                arrays[key] = h5_array(file, ds)
                attrs = {k: ds.attrs[k] for k in ("kind", "rate", "channels") if k in ds.attrs}
                if attrs:
                    meta.setdefault("modalities", {})[key] = {
                        k: (v.decode() if isinstance(v, bytes) else v.tolist() if hasattr(v, "tolist") else v)
                        for k, v in attrs.items()
                    }
            if "meta" in f.attrs:
                root = _parse_meta(file, "meta (root attribute)", f.attrs["meta"])
                mods = {**root.get("modalities", {}), **meta.get("modalities", {})}
                meta = {**root, **({"modalities": mods} if mods else {})}
    return arrays, meta


def _parse_meta(file: Path, key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, np.ndarray):
        value = value.item() if value.ndim == 0 else value
    if isinstance(value, bytes):
        value = value.decode()
    if not isinstance(value, str):
        raise fail(file, key, "a JSON string", type(value).__name__)
    try:
        meta = json.loads(value)
    except json.JSONDecodeError as e:
        raise fail(file, key, "valid JSON", f"invalid JSON ({e})") from e
    if not isinstance(meta, dict):
        raise fail(file, key, "a JSON object", type(meta).__name__)
    return meta


def _read_folder(folder: Path, cache_dir: str | None) -> tuple[dict[str, np.ndarray], dict[str, Any], str]:
    meta: dict[str, Any] = {}
    if (folder / "meta.json").is_file():
        meta = _parse_meta(folder / "meta.json", "meta.json", (folder / "meta.json").read_text())
    npys = sorted(folder.glob("*.npy"))
    shards = sorted(p for p in folder.iterdir() if p.suffix in GENERIC_SUFFIXES)
    if npys and shards:
        raise DataValidationError(
            f"{folder}: holds both .npy arrays and .npz/.h5 shards; use one layout per folder"
        )
    if npys:
        arrays = {}
        for p in npys:
            try:
                arrays[p.stem] = np.load(p, mmap_mode="r", allow_pickle=False)
            except ValueError as e:
                raise DataValidationError(f"{p}: not a readable .npy array without pickled objects ({e})") from e
        return arrays, meta, "folder of .npy arrays"
    if not shards:
        raise DataValidationError(f"{folder}: no data (expected <name>.npy arrays or .npz / .h5 shards)")
    parts = [_read_container(p) for p in shards]
    keys = set(parts[0][0])
    for p, (a, _) in zip(shards[1:], parts[1:]):
        if set(a) != keys:
            raise DataValidationError(
                f"{p}: shard arrays {sorted(a)} differ from those of {shards[0].name} {sorted(keys)}"
            )
    for _, m in parts:
        meta = {**m, **meta} if m else meta
    arrays = {}
    for k in sorted(keys):
        tails = {a[k].shape[1:] for a, _ in parts}
        if len(tails) != 1:
            raise fail(folder, k, "the same per-sample shape in every shard", ", ".join(map(str, tails)))
        n = sum(a[k].shape[0] for a, _ in parts)
        first = parts[0][0][k]
        if first.dtype.kind in "fiub" and not (k in RESERVED or k.startswith(PREFIXES)):
            out = allocate((n, *first.shape[1:]), first.dtype, cache_dir, f"generic_{k}")
            pos = 0
            for a, _ in parts:
                out[pos : pos + a[k].shape[0]] = a[k]
                pos += a[k].shape[0]
            arrays[k] = finish(out)
        else:
            arrays[k] = np.concatenate([np.asarray(a[k]) for a, _ in parts])
    return arrays, meta, f"{len(shards)} shards"


# ------------------------------------------------------------------ the loader
def _strings(file: Path, key: str, a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    try:
        if a.dtype.kind == "S":
            a = np.char.decode(a, "utf-8")
        elif a.dtype.kind == "O":
            a = np.asarray([v.decode() if isinstance(v, bytes) else str(v) for v in a.reshape(-1)])
    except UnicodeDecodeError as e:
        raise fail(file, key, "an (N,) array of UTF-8 strings train / val / test", f"bytes that are not UTF-8 ({e.reason} "
                   f"at byte {e.start})") from e
    if a.dtype.kind != "U":
        raise fail(file, key, "an (N,) array of strings train / val / test", f"dtype {a.dtype}")
    return a.reshape(-1)


@register_dataset("generic", description="users' own data: .npz / HDF5 / folder, one array per modality (+y, split...)")
def load_generic(
    path: str | None = None,
    modalities: Sequence[str] | None = None,
    dataset_name: str | None = None,
    task: str | None = None,
    cache_dir: str | None = None,
) -> MultimodalDataset:
    """Read the generic format (see the module docstring and ``docs/guide/data.md``).

    ``path``: an ``.npz``, ``.h5`` / ``.hdf5`` file or a folder (default ``$MMIB_DATA/generic.npz``,
    ``generic.h5`` or the folder ``generic``). ``modalities``: a subset to load. ``dataset_name`` / ``task``
    override the metadata (``dataset_name``, not ``name``: ``data.name`` selects the loader in configs).
    """
    if path is not None and Path(path).expanduser().is_dir():
        source = Path(path).expanduser()
        arrays, meta, _ = _read_folder(source, cache_dir)
    elif path is None and _default_folder() is not None:
        source = _default_folder()  # type: ignore[assignment]
        arrays, meta, _ = _read_folder(source, cache_dir)
    else:
        source = resolve_path(path, "generic", ["generic.npz", "generic.h5", "generic.hdf5"])
        if source.suffix not in GENERIC_SUFFIXES:
            raise DataValidationError(f"{source}: expected a .npz, .h5 or .hdf5 file or a folder")
        arrays, meta = _read_container(source)
    return dataset_from_arrays(source, arrays, meta, modalities=modalities, name=dataset_name, task=task)


#: meta field → (expected Python types, description) of the generic format's metadata
_META_FIELDS: dict[str, tuple[tuple[type, ...], str]] = {
    "name": ((str,), "a string"),
    "task": ((str,), f"one of {', '.join(TASK_TYPES)}"),
    "n_classes": ((int,), "an integer >= 2 (a classification task needs at least two classes)"),
    "target_dim": ((int,), "an integer >= 1"),
    "description": ((str,), "a string"),
    "latents": ((dict,), "an object {latent name: number of values, or 0 for a continuous latent}"),
    "modalities": ((dict,), "an object {modality: {kind, rate, channels}}"),
}


def _check_meta(source: Path, meta: Mapping[str, Any]) -> None:
    """Types and ranges of the metadata fields, each error naming the file and the field."""
    for k, (types, want) in _META_FIELDS.items():
        v = meta.get(k)
        if v is None:
            continue
        if not isinstance(v, types) or isinstance(v, bool):
            raise fail(source, f"meta.{k}", want, f"{v!r}")
    if meta.get("n_classes") is not None and meta["n_classes"] < 2:
        raise fail(source, "meta.n_classes", _META_FIELDS["n_classes"][1], repr(meta["n_classes"]))
    if meta.get("target_dim") is not None and meta["target_dim"] < 1:
        raise fail(source, "meta.target_dim", _META_FIELDS["target_dim"][1], repr(meta["target_dim"]))
    for k, v in (meta.get("latents") or {}).items():
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise fail(source, f"meta.latents.{k}", "the number of values (>= 0; 0 = continuous)", repr(v))
    for k, v in (meta.get("modalities") or {}).items():
        if not isinstance(v, dict):
            raise fail(source, f"meta.modalities.{k}", "an object {kind, rate, channels}", repr(v))
        rate = v.get("rate")
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0):
            raise fail(source, f"meta.modalities.{k}.rate", "a sampling rate in Hz > 0", repr(rate))
        ch = v.get("channels")
        if ch is not None and (not isinstance(ch, list) or not all(isinstance(c, str) for c in ch)):
            raise fail(source, f"meta.modalities.{k}.channels", "a list of channel names", repr(ch))


def _default_folder() -> Path | None:
    from mmib.data.loaders._common import data_root

    root = data_root()
    if root is not None and (root / "generic").is_dir():
        return root / "generic"
    return None


def dataset_from_arrays(
    source: Path,
    arrays: Mapping[str, np.ndarray],
    meta: Mapping[str, Any],
    modalities: Sequence[str] | None = None,
    name: str | None = None,
    task: str | None = None,
) -> MultimodalDataset:
    """Build the data set from the named arrays of the generic format, validating names, shapes and metadata."""
    _check_meta(source, meta)
    mod_names = [k for k in arrays if k not in RESERVED and not k.startswith(PREFIXES)]
    if not mod_names:
        raise DataValidationError(
            f"{source}: no modality arrays (every array other than {', '.join(RESERVED)} and "
            f"{', '.join(p + '*' for p in PREFIXES)} is a modality; found: {', '.join(sorted(arrays)) or '(none)'})"
        )
    mod_meta = meta.get("modalities", {}) or {}
    if not isinstance(mod_meta, Mapping):
        raise fail(source, "meta.modalities", "an object {modality: {kind, rate, channels}}", type(mod_meta).__name__)
    unknown_meta = [k for k in mod_meta if k not in mod_names]
    if unknown_meta:
        raise fail(source, "meta.modalities", f"entries for the modality arrays ({', '.join(mod_names)})",
                   f"entries for {', '.join(unknown_meta)} which have no array")  # fmt: skip
    if modalities is not None:
        wanted = [modalities] if isinstance(modalities, str) else list(modalities)
        missing = [m for m in wanted if m not in mod_names]
        if missing:
            raise DataValidationError(f"{source}: no array for modality {', '.join(missing)}; has {', '.join(mod_names)}")
        mod_names = [m for m in mod_names if m in wanted]
    specs = []
    for m in mod_names:
        a = arrays[m]
        if a.ndim < 2:
            raise fail(source, m, "an array (N, *per-sample shape) with at least 2 dimensions (reshape a scalar "
                       "per sample to (N, 1))", f"shape {tuple(a.shape)}")  # fmt: skip
        if a.dtype.kind not in "fiu":
            raise fail(source, m, "a numeric (float or integer) array", f"dtype {a.dtype}")
        mm = dict(mod_meta.get(m, {}))
        kind = mm.get("kind")
        if kind is not None and kind not in MODALITY_KINDS:
            raise fail(source, f"meta.modalities.{m}.kind", f"one of {', '.join(MODALITY_KINDS)}", repr(kind))
        rate = mm.get("rate")
        channels = mm.get("channels")
        try:
            specs.append(ModalitySpec.infer(m, a.shape[1:], kind=kind, rate=None if rate is None else float(rate),
                                            channels=tuple(channels) if channels else None))  # fmt: skip
        except ValueError as e:
            raise DataValidationError(f"{source}: key '{m}': {e}") from e

    y = arrays.get("y")
    task = task or meta.get("task")
    if y is not None:
        y = np.array(y)  # small: read into memory
        if y.dtype.kind == "b":
            y = y.astype(np.int64)
        if y.dtype.kind in "USO":
            raise fail(source, "y", "integer class indices 0..K-1 or numeric regression targets",
                       f"dtype {y.dtype} (map class names to indices and list them in meta.description)")
        if y.ndim == 0 or y.size == 0:
            raise fail(source, "y", "one label per sample (N,) or (N, k)", f"shape {tuple(y.shape)}")
    if task is None:
        task = "none" if y is None else ("classification" if y.dtype.kind in "iu" else "regression")
    check_choice(f"{source}: task", task, TASK_TYPES)
    n_classes = meta.get("n_classes")
    target_dim = int(meta.get("target_dim", 1))
    if y is not None:
        if task == "classification" and n_classes is None:
            if y.dtype.kind not in "iu":
                raise fail(source, "y", "integer class indices for a classification task", f"dtype {y.dtype}")
            n_classes = max(2, int(y.max()) + 1)
        if task == "regression" and "target_dim" not in meta:
            target_dim = 1 if y.ndim == 1 else int(np.prod(y.shape[1:]))
    elif task != "none":
        raise fail(source, "y", f"labels for the task '{task}' given in the metadata", "no 'y' array")
    latents = {k[len("latent_") :]: np.array(v) for k, v in arrays.items() if k.startswith("latent_")}
    for k, v in latents.items():
        if v.dtype.kind not in "fiub" or v.ndim == 0:
            raise fail(source, f"latent_{k}", "a numeric array (N,) or (N, k)", f"dtype {v.dtype}, shape {v.shape}")
    lat_meta = meta.get("latents") or {
        k: (int(v.max()) + 1 if v.dtype.kind in "iub" and v.size else 0) for k, v in latents.items()
    }
    spec = DatasetSpec(
        name=name or meta.get("name") or source.stem,
        modalities=tuple(specs),
        task=task,
        n_classes=None if task != "classification" else int(n_classes),
        target_dim=target_dim,
        latents=lat_meta,
        description=meta.get("description", f"generic data from {source.name}"),
    )
    mask = {k[len("mask_") :]: np.array(v) for k, v in arrays.items() if k.startswith("mask_")}
    lengths = {k[len("lengths_") :]: np.array(v) for k, v in arrays.items() if k.startswith("lengths_")}
    for what, d in (("mask_", mask), ("lengths_", lengths)):
        bad = [k for k in d if k not in [s.name for s in specs] and k not in arrays]
        if bad:
            raise fail(source, what + bad[0], f"the name of a modality array ({', '.join(mod_names)})", repr(bad[0]))
    keep = {s.name for s in specs}
    split = arrays.get("split")
    return build_dataset_from_file(
        source,
        spec,
        x={m: arrays[m] for m in mod_names},
        y=y,
        latents=latents or None,
        mask={k: v for k, v in mask.items() if k in keep} or None,
        lengths={k: v for k, v in lengths.items() if k in keep} or None,
        groups=None if arrays.get("groups") is None else np.array(arrays["groups"]),
        split=None if split is None else _strings(source, "split", split),
    )
