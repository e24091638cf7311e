"""mmib.utils.progress: ProgressReporter shows one rich display with a bar per task, or does nothing when disabled."""

import io

from rich.console import Console

from mmib.utils.progress import ProgressReporter


def test_disabled_reporter_does_nothing():
    with ProgressReporter(enabled=False) as rep:
        assert rep._progress is None
        with rep.task("subsets", total=3) as advance:
            for _ in range(3):
                advance()
            advance(5)
        rep.log("not shown")
    assert rep._progress is None


def test_enabled_reporter_counts_each_task_and_stops(monkeypatch):
    import rich.progress

    buf = io.StringIO()
    real = rich.progress.Progress

    def quiet(*columns, **kw):  # the same display, printed into a buffer
        return real(*columns, console=Console(file=buf, force_terminal=False, width=100), **kw)

    monkeypatch.setattr(rich.progress, "Progress", quiet)
    with ProgressReporter() as rep:
        prog = rep._progress
        assert prog is not None and prog.live.is_started
        with rep.task("probes", total=4) as advance:
            advance()
            advance(2)
            (task,) = prog.tasks
            assert task.description == "probes" and task.completed == 3 and task.total == 4
        assert prog.tasks[0].completed == 4  # a finished task shows as complete
        with rep.task("open-ended") as advance:
            advance()
            assert prog.tasks[1].completed == 1 and prog.tasks[1].total is None
        rep.log("a line between the bars")
    assert rep._progress is None and not prog.live.is_started
    assert "a line between the bars" in buf.getvalue()
