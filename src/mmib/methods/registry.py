"""Registry of methods, found by name: ``build_method("clip", spec, cfg, encoder_cfg)``.

A method registers itself with ``@register_method("name")`` on its class, in any module of the :mod:`mmib.methods`
package (sub-packages included). There is no list of modules to keep: the first lookup (:func:`method_names`,
:func:`get_method_class`, :func:`build_method`, :func:`load_method`) imports every module of the package once
(:func:`discover_methods`), so a new ``src/mmib/methods/<name>.py`` is found as it is.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mmib.data.spec import DatasetSpec
from mmib.errors import MMIBError, UnknownNameError
from mmib.methods.base import Method

METHODS: dict[str, type[Method]] = {}

_PACKAGE = "mmib.methods"
#: the modules of the package imported by discover_methods (None until the first lookup)
_DISCOVERED: tuple[str, ...] | None = None


def register_method(name: str):
    def deco(cls: type[Method]) -> type[Method]:
        if name in METHODS and METHODS[name] is not cls:
            raise ValueError(f"method '{name}' is already registered")
        own = cls.__dict__.get("name")
        if own and own != name:
            raise ValueError(f"method class {cls.__name__} says name '{own}' but is registered as '{name}'")
        cls.name = name  # checkpoints store it: load_method and `mmib eval` find the class by this name
        METHODS[name] = cls
        return cls

    return deco


def discover_methods() -> tuple[str, ...]:
    """Import every module of the :mod:`mmib.methods` package (and of its sub-packages) once, which registers the
    methods they define; later calls return at once. Returns the names of the modules imported."""
    global _DISCOVERED
    if _DISCOVERED is None:
        package = importlib.import_module(_PACKAGE)
        found = []
        for info in pkgutil.walk_packages(package.__path__, _PACKAGE + "."):
            importlib.import_module(info.name)
            found.append(info.name)
        _DISCOVERED = tuple(sorted(found))
    return _DISCOVERED


def method_names() -> list[str]:
    discover_methods()
    return sorted(METHODS)


def get_method_class(name: str) -> type[Method]:
    discover_methods()
    if name not in METHODS:
        raise UnknownNameError("method", name, list(METHODS))
    return METHODS[name]


def build_method(name: str, spec: DatasetSpec, cfg: Mapping[str, Any], encoder_cfg: Mapping[str, Any] | None = None) -> Method:
    return get_method_class(name)(spec, cfg, encoder_cfg)


def read_checkpoint(path: str | os.PathLike, map_location: str = "cpu", mmap: bool = False) -> dict[str, Any]:
    """Load a checkpoint without ever executing code from it (``weights_only=True``) and verify its content digest:
    a crafted, truncated, corrupted or altered file gives a one-line :class:`MMIBError` naming it
    (:mod:`mmib.utils.checkpoint`). ``mmap=True`` maps the tensors instead of reading them."""
    from mmib.utils.checkpoint import read_checkpoint as _read

    return _read(path, map_location=map_location, mmap=mmap)


def load_method(checkpoint: str, map_location: str = "cpu") -> Method:
    """Rebuild a trained method from a Lightning checkpoint written by the engine."""
    return method_from_checkpoint(read_checkpoint(checkpoint, map_location=map_location), checkpoint)


def method_from_checkpoint(ckpt: dict[str, Any], checkpoint: str) -> Method:
    """The trained method of a checkpoint already read by :func:`read_checkpoint` (``checkpoint`` names its file in
    errors)."""
    hp = ckpt.get("hyper_parameters") or {}
    missing = [k for k in ("method_name", "spec", "cfg", "encoder_cfg") if k not in hp] + \
        ([] if "state_dict" in ckpt else ["state_dict"])
    if missing:
        raise MMIBError(f"'{checkpoint}': not an mmib checkpoint (lacks {', '.join(missing)}); "
                        "expected one written by `mmib train`")
    hp = ckpt["hyper_parameters"]
    method = build_method(hp["method_name"], DatasetSpec.from_dict(hp["spec"]), hp["cfg"], hp["encoder_cfg"])
    method.load_state_dict(ckpt["state_dict"])
    method.eval()
    return method


def run_checkpoint(run_dir: str | os.PathLike, checkpoint: str | None = None) -> tuple[Path, Path]:
    """The run folder and the checkpoint that ``run_dir`` names: a run folder (its ``checkpoints/last.ckpt``, or
    ``checkpoint``) or a ``.ckpt`` file inside one (``<run>/checkpoints/<file>.ckpt`` next to ``<run>/config.yaml``).
    A one-line :class:`MMIBError` when the folder has no ``config.yaml`` or the checkpoint is not there."""
    run_dir = Path(run_dir)
    if run_dir.suffix == ".ckpt":
        checkpoint, run_dir = str(run_dir), run_dir.parent.parent
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file() and checkpoint:
        raise MMIBError(f"checkpoint '{checkpoint}' is not inside a run folder (<run>/checkpoints/<file>.ckpt next to "
                        "<run>/config.yaml): evaluation needs the run's config for its data and splits")
    if not cfg_path.is_file():
        raise MMIBError(f"'{run_dir}' is not an mmib run folder (no config.yaml); train one with `mmib train`")
    ckpt = Path(checkpoint) if checkpoint else run_dir / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        raise MMIBError(f"run '{run_dir}': no checkpoint at '{ckpt}'")
    return run_dir, ckpt
