"""Optional dependencies: import them or stop with a message that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from mmib.errors import MissingDependencyError


def require(module: str, extra: str, purpose: str = "this feature") -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``pip install 'mmib[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingDependencyError(
            f"{purpose} needs the optional package '{module.split('.')[0]}': pip install 'mmib[{extra}]' ({e})"
        ) from e
