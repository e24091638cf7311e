"""Shared machinery of the file loaders: locating files, schema checks with precise errors, array storage.

Errors (documented in ``docs/guide/data.md``):

* :class:`DataFileNotFoundError` (an :class:`~mmib.errors.MMIBError` and a :class:`FileNotFoundError`): the file
  or folder is not where the config or ``MMIB_DATA`` says; the message names every path that was tried.
* :class:`~mmib.data.dataset.DataValidationError` (a :class:`ValueError`): the file exists but does not have the
  expected schema; the message names the file, the key and the expected shape / type.

No loader ever downloads anything.
"""

from __future__ import annotations

import importlib
import os
import pickle
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmib.data.dataset import DataValidationError, MultimodalDataset
from mmib.data.spec import DatasetSpec
from mmib.errors import MMIBError

#: environment variable naming the folder where data sets live
DATA_ENV = "MMIB_DATA"


class DataFileNotFoundError(MMIBError, FileNotFoundError):
    """A data file or folder is missing; the message names the paths tried and ``MMIB_DATA``."""


def data_root() -> Path | None:
    """The folder named by ``MMIB_DATA``, or None when the variable is unset or empty."""
    root = os.environ.get(DATA_ENV, "").strip()
    return Path(root).expanduser() if root else None


def resolve_path(
    path: str | os.PathLike | None,
    dataset: str,
    default_names: Sequence[str],
    want: str = "file",
) -> Path:
    """Find a data set's file (``want="file"``) or folder (``want="dir"``).

    ``path`` may be the file/folder itself or, for files, a folder holding one of ``default_names``. Without
    ``path``, ``$MMIB_DATA/<name>`` and ``$MMIB_DATA/<dataset>/<name>`` are tried for each default name.

    Raises:
        DataFileNotFoundError: naming every path tried and how to point mmib at the data.
    """
    tried: list[Path] = []

    def ok(p: Path) -> bool:
        tried.append(p)
        return p.is_file() if want == "file" else p.is_dir()

    if path is not None and str(path) != "":
        p = Path(path).expanduser()
        if ok(p):
            return p
        if want == "file" and p.is_dir():
            for name in default_names:
                if ok(p / name):
                    return p / name
    else:
        root = data_root()
        if root is not None:
            for name in default_names:
                for cand in (root / name, root / dataset / name):
                    if ok(cand):
                        return cand
    what = "file" if want == "file" else "folder"
    tried_s = ", ".join(str(t) for t in dict.fromkeys(tried)) or "(nothing: no path given and MMIB_DATA is unset)"
    raise DataFileNotFoundError(
        f"data set '{dataset}': {what} not found (tried: {tried_s}). mmib never downloads data: obtain "
        f"{' or '.join(default_names)} (see docs/guide/data.md) and pass its location as the data set's 'path' "
        f"option, or put it in the folder named by the {DATA_ENV} environment variable "
        f"(as $MMIB_DATA/{default_names[0]} or $MMIB_DATA/{dataset}/{default_names[0]})"
    )


def fail(file: str | os.PathLike, key: str, expected: str, got: str) -> DataValidationError:
    """The standard schema error: ``<file>: key '<key>': expected <expected>, got <got>``."""
    return DataValidationError(f"{file}: key '{key}': expected {expected}, got {got}")


def describe(v: Any) -> str:
    """A short description of a value for error messages: type, shape and dtype."""
    if isinstance(v, np.ndarray) or hasattr(v, "shape") and hasattr(v, "dtype"):
        return f"{type(v).__name__} of shape {tuple(v.shape)} and dtype {v.dtype}"
    return f"{type(v).__name__}"


def get_key(mapping: Any, key: str, file: str | os.PathLike, where: str = "", expected: str = "") -> Any:
    """``mapping[key]`` or a :class:`DataValidationError` naming the file, the key and the keys present."""
    full = f"{where}/{key}" if where else key
    if not isinstance(mapping, Mapping) and not hasattr(mapping, "keys"):
        raise fail(file, where or "(root)", "a dict / group", describe(mapping))
    if key not in mapping:
        present = ", ".join(sorted(map(str, mapping.keys()))) or "(none)"
        exp = f"{expected} " if expected else ""
        raise DataValidationError(f"{file}: missing key '{full}' ({exp}present keys: {present})")
    return mapping[key]


def check_array(
    a: Any,
    file: str | os.PathLike,
    key: str,
    shape: Sequence[int | None | tuple[int, ...]] | None = None,
    ndim: int | Iterable[int] | None = None,
    numeric: bool = True,
) -> np.ndarray:
    """Validate an array read from a file and return it as a numpy array (h5py datasets are read).

    ``shape`` entries: an int (that size), None (any size), or a tuple of allowed sizes.
    """
    if not isinstance(a, np.ndarray):
        if hasattr(a, "shape") and hasattr(a, "dtype"):  # h5py dataset
            a = a[()]
        elif isinstance(a, Mapping) or hasattr(a, "keys"):  # a dict / an HDF5 group where an array belongs
            keys = ", ".join(sorted(map(str, a.keys()))) or "(none)"
            raise fail(file, key, "a numeric array", f"{'an HDF5 group' if hasattr(a, 'visit') else 'a dict'} "
                       f"(keys: {keys})")
        else:
            try:
                a = np.asarray(a)
            except Exception:  # pragma: no cover - exotic objects
                raise fail(file, key, "an array", describe(a)) from None
            if a.dtype == object:
                raise fail(file, key, "a numeric array", f"an object array built from {describe(a)}")
    want = "(" + ", ".join("N" if s is None else ("|".join(map(str, s)) if isinstance(s, tuple) else str(s))
                           for s in shape) + ")" if shape is not None else None  # fmt: skip
    if numeric and (a.dtype.kind not in "fiub"):
        raise fail(file, key, f"a numeric array{' of shape ' + want if want else ''}", describe(a))
    if ndim is not None:
        allowed = {ndim} if isinstance(ndim, int) else set(ndim)
        if a.ndim not in allowed:
            raise fail(file, key, f"an array with {' or '.join(map(str, sorted(allowed)))} dimensions", describe(a))
    if shape is not None:
        if a.ndim != len(shape) or any(
            s is not None and (a.shape[i] not in s if isinstance(s, tuple) else a.shape[i] != s)
            for i, s in enumerate(shape)
        ):
            raise fail(file, key, f"shape {want}", f"shape {tuple(a.shape)}")
    return a


#: option name that lets a pickle-based loader unpickle anything (documented in ``docs/guide/data.md``)
TRUST_PICKLE_OPTION = "data.trust_pickle"

#: the only globals a data pickle may name unless it is trusted: numpy arrays, dtypes and scalars (numpy 1.x and 2.x
#: module names, pickle protocols 2 to 5), and harmless builtin containers / scalars. MultiBench's affect and MIMIC
#: pickles and the Python-2 WESAD pickles refer to nothing else.
SAFE_PICKLE_GLOBALS = frozenset({
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    ("collections", "OrderedDict"),
    *(("builtins", n) for n in ("set", "frozenset", "complex", "bytearray", "bytes", "str", "int", "float", "bool",
                                "list", "dict", "tuple")),
})  # fmt: skip


class _RefusedGlobal(pickle.UnpicklingError):
    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


class _DataUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and builtin containers only (see :data:`SAFE_PICKLE_GLOBALS`)."""

    def find_class(self, module: str, name: str) -> Any:
        import _compat_pickle

        key = (module, name)
        if key not in SAFE_PICKLE_GLOBALS:  # Python-2 names (``__builtin__.set``, ``copy_reg``...)
            key = _compat_pickle.NAME_MAPPING.get(key, (_compat_pickle.IMPORT_MAPPING.get(module, module), name))
        if key not in SAFE_PICKLE_GLOBALS:
            raise _RefusedGlobal(f"{key[0]}.{key[1]}")  # as Python 3 names it (``__builtin__.exec`` → builtins.exec)
        mod, attr = key
        if mod.startswith("numpy.core."):  # numpy 2 keeps numpy.core as a deprecated alias of numpy._core
            try:
                return getattr(importlib.import_module("numpy._core." + mod[len("numpy.core."):]), attr)
            except ImportError:  # numpy 1.x
                pass
        return getattr(importlib.import_module(mod), attr)


def _dtype_has_object_parts(dt: np.dtype) -> bool:
    """True if a structured or sub-array dtype holds Python objects anywhere inside (whatever its flags claim)."""
    if dt.fields:
        return any(f[0].kind == "O" or _dtype_has_object_parts(f[0]) for f in dt.fields.values())
    if dt.subdtype is not None:
        base = dt.subdtype[0]
        return base.kind == "O" or _dtype_has_object_parts(base)
    return False


def _check_array_memory_safety(obj: Any, file: Path, _depth: int = 0) -> None:
    """Refuse arrays whose dtype hides Python objects inside a structured or sub-array layout: a pickle can build
    such a dtype with its object flags cleared, and numpy then reads raw file bytes as object pointers (a crash, or
    worse, on first use). The data sets read this way hold numeric arrays and plain object arrays only."""
    if _depth > 50:
        return
    if isinstance(obj, np.ndarray) or isinstance(obj, np.generic):
        if _dtype_has_object_parts(obj.dtype):
            raise _RefusedGlobal(f"numpy array of dtype {obj.dtype!r} (objects inside a structured dtype)")
        return
    if isinstance(obj, dict):
        for k, v in obj.items():
            _check_array_memory_safety(k, file, _depth + 1)
            _check_array_memory_safety(v, file, _depth + 1)
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for v in obj:
            _check_array_memory_safety(v, file, _depth + 1)


def load_pickle(file: Path, encoding: str = "ASCII", trust: bool = False) -> Any:
    """Unpickle a data file; a corrupt or foreign file gives a :class:`DataValidationError` naming it.

    By default only numpy arrays, dtypes, scalars and builtin containers are built: any other global the pickle
    names (a class, a function such as ``os.system``) is refused before it is called, with an error naming the file,
    the global and the option ``data.trust_pickle=true``. ``trust=True`` unpickles without restriction: unpickling
    can run arbitrary code, so only for files whose origin you trust.
    """
    if not isinstance(trust, (bool, np.bool_)):  # a string "false" must not turn the restriction off
        raise DataValidationError(f"{file}: option trust_pickle: expected true or false, got {trust!r}")
    try:
        with open(file, "rb") as f:
            if trust:
                return pickle.load(f, encoding=encoding)
            out = _DataUnpickler(f, encoding=encoding).load()
        _check_array_memory_safety(out, file)
        return out
    except _RefusedGlobal as e:
        raise DataValidationError(
            f"{file}: refused to unpickle '{e.name}': a data pickle should hold only numpy arrays and Python "
            f"containers, and unpickling anything else can run code; if you trust this file, set "
            f"{TRUST_PICKLE_OPTION}=true (mmib data check: --option trust_pickle=true)"
        ) from None
    except OSError as e:
        raise DataValidationError(f"{file}: cannot be read ({type(e).__name__}: {e})") from e
    except Exception as e:  # truncated, corrupt or foreign files raise many kinds of errors while unpickling
        msg = " ".join(str(e).split())[:200]
        raise DataValidationError(f"{file}: not a readable pickle of the expected kind ({type(e).__name__}: {msg})") from e


def open_h5(file: Path, purpose: str):
    """Open an HDF5 file read-only (h5py from the ``data`` extra); unreadable files name the file."""
    from mmib.utils.deps import require

    h5py = require("h5py", "data", purpose)
    try:
        return h5py.File(file, "r")
    except OSError as e:
        raise DataValidationError(f"{file}: not a readable HDF5 file ({e})") from e


def allocate(shape: Sequence[int], dtype: Any, cache_dir: str | os.PathLike | None, name: str) -> np.ndarray:
    """An array to fill: in memory, or a memory-mapped ``.npy`` in ``cache_dir`` (for data larger than RAM).

    Memory-mapped arrays are streamed by :class:`~mmib.data.dataset.MultimodalDataset` (read per batch).
    """
    if cache_dir is None:
        return np.empty(tuple(shape), dtype=dtype)
    d = Path(cache_dir).expanduser()
    d.mkdir(parents=True, exist_ok=True)
    return np.lib.format.open_memmap(d / f"{name}.npy", mode="w+", dtype=dtype, shape=tuple(shape))


def finish(a: np.ndarray) -> np.ndarray:
    """Flush a memory-mapped array and reopen it read-only (a no-op for in-memory arrays)."""
    if isinstance(a, np.memmap) and a.filename is not None:
        a.flush()
        return np.load(a.filename, mmap_mode="r")
    return a


def build_dataset_from_file(file: str | os.PathLike, spec: DatasetSpec, **kwargs: Any) -> MultimodalDataset:
    """:class:`MultimodalDataset` whose validation errors name the source file."""
    try:
        ds = MultimodalDataset(spec, **kwargs)
    except DataValidationError as e:
        raise DataValidationError(f"{file}: {e}") from e
    ds.source = str(file)
    return ds


def seeded_group_split(
    groups: np.ndarray, val_fraction: float, test_fraction: float, seed: int, what: str
) -> np.ndarray:
    """Per-sample 'train'/'val'/'test' from a seeded permutation of the unique groups (e.g. episodes)."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataValidationError(
            f"{what}: expected val_fraction, test_fraction >= 0 with a sum < 1, got {val_fraction}, {test_fraction}"
        )
    uniq = np.unique(groups)
    perm = np.random.default_rng(seed).permutation(uniq)
    n_test = max(1, int(round(test_fraction * len(uniq)))) if test_fraction > 0 else 0
    n_val = max(1, int(round(val_fraction * len(uniq)))) if val_fraction > 0 else 0
    if n_test + n_val >= len(uniq):
        raise DataValidationError(
            f"{what}: {len(uniq)} groups cannot be split into train/val/test with fractions "
            f"{val_fraction}/{test_fraction} (need at least {n_test + n_val + 1})"
        )
    split = np.full(len(groups), "train", dtype="<U5")
    split[np.isin(groups, perm[:n_test])] = "test"
    split[np.isin(groups, perm[n_test : n_test + n_val])] = "val"
    return split


def check_choice(what: str, value: Any, choices: Sequence[Any]) -> None:
    if value not in choices:
        raise DataValidationError(f"{what}: expected one of {', '.join(map(str, choices))}, got {value!r}")


def pick_modalities(dataset: str, requested: Sequence[str] | str | None, available: Sequence[str]) -> tuple[str, ...]:
    """Validate a requested subset of modalities (None → all), keeping the canonical order."""
    if requested is None:
        return tuple(available)
    if isinstance(requested, str):
        requested = [requested]
    unknown = [m for m in requested if m not in available]
    if unknown:
        raise DataValidationError(
            f"{dataset}: unknown modality {', '.join(map(repr, unknown))}; valid: {', '.join(available)}"
        )
    if not requested:
        raise DataValidationError(f"{dataset}: an empty list of modalities was requested")
    return tuple(m for m in available if m in set(requested))
