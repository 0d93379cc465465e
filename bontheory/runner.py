"""Running experiments: progress display.

An experiment shows the progress of its sweep with :func:`progress` (``tqdm``)::

    from bontheory.runner import progress

    for n in progress(config.ns, desc=NAME):
        run.cell(f"n={n}", lambda: compute(n))
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterable
from typing import IO, TypeVar

from tqdm import tqdm

T = TypeVar("T")

#: Seconds between two progress lines when stderr is not a terminal (a log file, CI).
LOG_INTERVAL = 30.0


class _PlainLines(io.TextIOBase):
    """A text stream for tqdm that turns each redraw (``"\\r" + line``) into a plain line of its own."""

    def __init__(self, stream: IO[str]):
        self.stream = stream

    def write(self, s: str) -> int:
        line = s.replace("\r", "").rstrip()
        if line:
            self.stream.write(line + "\n")
            self.stream.flush()
        return len(s)

    def flush(self) -> None:
        self.stream.flush()


def _mode(stream: IO[str]) -> str:
    env = os.environ.get("BONTHEORY_PROGRESS", "").strip().lower()
    if env in ("0", "off", "false", "no"):
        return "off"
    if env in ("1", "on", "true", "yes", "tty"):
        return "tty"
    try:
        return "tty" if stream.isatty() else "log"
    except (AttributeError, ValueError):
        return "log"


def progress(iterable: Iterable[T], desc: str | None = None, *, total: int | None = None,
             file: IO[str] | None = None) -> tqdm:
    """``tqdm(iterable)`` set up for experiment logs: yields the items of ``iterable`` while showing progress.

    On a terminal: tqdm's bar with the elapsed time and the time left, redrawn in place. Anywhere else (a log
    file, CI): a plain line at the start, at most every :data:`LOG_INTERVAL` seconds, and at the end, so the
    log stays readable. ``BONTHEORY_PROGRESS=0`` silences it, ``BONTHEORY_PROGRESS=1`` forces the terminal
    bar.

    Args:
      iterable: the items (e.g. the cells of a sweep).
      desc: a short label printed before the bar.
      total: the number of items; taken from ``len(iterable)`` if it has one.
      file: where to write (default ``sys.stderr``).

    Returns:
      The ``tqdm`` iterator over ``iterable``.
    """
    stream = file if file is not None else sys.stderr
    mode = _mode(stream)
    if mode == "tty":
        return tqdm(iterable, desc=desc, total=total, file=stream, dynamic_ncols=True)
    return tqdm(iterable, desc=desc, total=total, file=_PlainLines(stream), mininterval=LOG_INTERVAL,
                ascii=True, disable=mode == "off")
