"""What the shop's management commands share so they behave like Unix tools: progress bars only on
a terminal, and the command's own report (stdout summary, one CommandError line) as the only output."""
from __future__ import annotations

import contextlib
import logging
import sys

# Row errors shown on stderr when some rows of an import are bad (the rest are counted).
BAD_ROWS_SHOWN = 20


def progress_wanted(no_progress: bool = False) -> bool:
    """A progress bar only for a person at a terminal, never into a pipe, a file or a log."""
    return not no_progress and sys.stdout.isatty()


class _NoTracebacks(logging.Filter):
    # A failure the command turns into its one CommandError line must not also arrive as a logged traceback.
    def filter(self, record: logging.LogRecord) -> bool:
        return record.exc_info is None


@contextlib.contextmanager
def operator_output(verbosity: int = 1):
    """Below ``-v 2`` the command's lines are the whole report: the services' INFO log lines (which
    repeat the command's own lines on stderr, so an operator saw every stage twice), logged
    tracebacks of failures the command reports itself, and kombu's "No hostname was supplied"
    (eager Celery without a broker still acquires a producer in ``apply_async``) are held back.
    Warnings still reach stderr. ``-v 2`` shows the full log."""
    if verbosity >= 2:
        yield
        return
    root = logging.getLogger()
    kombu = logging.getLogger("kombu.connection")
    levels = (root.level, kombu.level)
    handlers = list(root.handlers)
    quiet = _NoTracebacks()
    root.setLevel(logging.WARNING)
    kombu.setLevel(logging.ERROR)
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        yield
    finally:
        root.setLevel(levels[0])
        kombu.setLevel(levels[1])
        for handler in handlers:
            handler.removeFilter(quiet)

