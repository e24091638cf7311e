"""Errors mmib raises for user mistakes; the CLI prints them as one line (exit code 2) without a traceback."""


class MMIBError(Exception):
    """Base class of user-facing errors."""


class UnknownNameError(MMIBError, KeyError):
    """An unknown method, data set, modality, option or config key; the message lists the valid ones."""

    def __init__(self, what: str, name: str, valid: list[str] | tuple[str, ...]):
        self.what, self.name, self.valid = what, name, sorted(valid)
        super().__init__(f"unknown {what} '{name}'; valid: {', '.join(self.valid) if self.valid else '(none)'}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class MissingDependencyError(MMIBError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""
