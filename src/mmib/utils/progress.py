"""Progress display of long work (evaluation, studies; rich), or nothing when disabled (tests, CI logs)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager


class ProgressReporter:
    """One rich progress display for a whole evaluation; ``task`` adds a bar per step.

    >>> with ProgressReporter(enabled=False) as rep, rep.task("subsets", total=3) as advance:
    ...     for _ in range(3):
    ...         advance()
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._progress = None

    def __enter__(self) -> ProgressReporter:
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TimeElapsedColumn())
            self._progress.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    @contextmanager
    def task(self, description: str, total: int | None = None) -> Iterator[Callable[[int], None]]:
        if self._progress is None:
            yield lambda n=1: None
            return
        tid = self._progress.add_task(description, total=total)
        try:
            yield lambda n=1: self._progress.advance(tid, n)
        finally:
            self._progress.update(tid, completed=total if total is not None else None)

    def log(self, message: str) -> None:
        if self._progress is not None:
            self._progress.console.print(message)
