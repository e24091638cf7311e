"""Moved to :mod:`mmib.utils.progress` (progress reporting is a utility: :mod:`mmib.info` uses it too).

Kept only while ``eval/evaluate.py`` and ``eval/protocols.py`` still import it from here; delete it once they import
``from mmib.utils.progress import ProgressReporter``."""

from mmib.utils.progress import ProgressReporter

__all__ = ["ProgressReporter"]
