"""Errors mmib raises for user mistakes; the CLI prints them as one line (exit code 2) without a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class MMIBError(Exception):
    """Base class of user-facing errors."""


def close_matches(name: str, valid: Iterable[str], n: int = 3) -> list[str]:
    """The valid names closest to ``name`` (``difflib.get_close_matches``), best first.

    Dotted names (config keys ``trainer.max_epoch``) are compared by their last part among the valid names with the
    same parent, so that the shared prefix does not make every key of the group look close. A comma-separated
    ``name`` (several unknown names reported at once) gets the close matches of each part."""
    valid = [str(v) for v in valid]
    name = str(name)
    if ", " in name:
        out: list[str] = []
        for part in name.split(", "):
            out += [m for m in close_matches(part, valid, n) if m not in out]
        return out[:n]
    if "." in name:
        parent, leaf = name.rsplit(".", 1)
        siblings = {v.rsplit(".", 1)[1]: v for v in valid if "." in v and v.rsplit(".", 1)[0] == parent}
        if siblings:
            return [siblings[m] for m in difflib.get_close_matches(leaf, list(siblings), n=n, cutoff=0.6)]
    lowered = {v.lower(): v for v in valid}
    return [lowered[m] for m in difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)]


def did_you_mean(name: str, valid: Iterable[str]) -> str:
    """``"did you mean 'clip'? "`` (or ``'clip' or 'clip_ib'``) for the closest valid names, ``""`` if none is close."""
    m = close_matches(name, valid)
    return f"did you mean {' or '.join(repr(x) for x in m)}? " if m else ""


class UnknownNameError(MMIBError, KeyError):
    """An unknown method, data set, modality, option or config key; the message suggests the closest valid names
    ("did you mean 'clip'?") and then lists all of them."""

    def __init__(self, what: str, name: str, valid: list[str] | tuple[str, ...]):
        self.what, self.name, self.valid = what, name, sorted(str(v) for v in valid)
        self.suggestions = close_matches(str(name), self.valid)
        hint = did_you_mean(str(name), self.valid)
        super().__init__(f"unknown {what} '{name}'; {hint}valid: {', '.join(self.valid) if self.valid else '(none)'}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


def check_known(what: str, given: Iterable[str], valid: Iterable[str]) -> None:
    """Raise :class:`UnknownNameError` naming every name of ``given`` that is not in ``valid`` (e.g. the keyword
    arguments of an options dataclass: ``[f.name for f in dataclasses.fields(cls) if f.init]``)."""
    valid = [str(v) for v in valid]
    bad = [str(k) for k in given if str(k) not in valid]
    if bad:
        raise UnknownNameError(what, ", ".join(bad), valid)


class MissingDependencyError(MMIBError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""
