"""A small dependency-free progress bar with an estimate of the time left.

Wrap a sweep's loop::

    from bontheory.progress import progress

    for n in progress(config.ns, desc="n"):
        run.cell(f"n={n}", lambda: compute(n))

On a terminal it redraws one line on stderr (at most ten times a second)::

    kl_bound n  12/40 [######.............]  30%  0:41 elapsed  ~1:35 left

When stderr is not a terminal (a log file, CI) it prints a line only every ~10% of the work or every
30 seconds, whichever comes first, and a last line when done. ``BONTHEORY_PROGRESS=0`` silences it,
``BONTHEORY_PROGRESS=1`` forces the terminal style.

The time-left estimate uses the average time per item of the items done *in this session*; items that
return at once because a resumed run read them from disk are counted as done but do not make the
estimate optimistic for long (the rate is the recent rate over the last items).
"""

from __future__ import annotations

import os
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import IO, TypeVar


T = TypeVar("T")


def format_duration(seconds: float) -> str:
    """``h:mm:ss`` (or ``m:ss`` under an hour) for a number of seconds; ``?`` if unknown."""
    if seconds is None or seconds != seconds or seconds < 0 or seconds == float("inf"):
        return "?"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


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


class _Bar:
    def __init__(self, total: int | None, desc: str, stream: IO[str], width: int, window: int):
        self.total = total
        self.desc = desc
        self.stream = stream
        self.width = width
        self.mode = _mode(stream)
        self.start = time.monotonic()
        self.done = 0
        self.times: deque[float] = deque([self.start], maxlen=window + 1)
        self.last_draw = 0.0
        self.last_log_time = self.start
        self.last_log_fraction = 0.0

    def eta(self) -> float | None:
        if self.total is None or self.done == 0:
            return None
        span = self.times[-1] - self.times[0]
        per_item = span / (len(self.times) - 1) if len(self.times) > 1 else 0.0
        return per_item * (self.total - self.done)

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        head = f"{self.desc} " if self.desc else ""
        if self.total:
            frac = self.done / self.total
            filled = int(round(frac * self.width))
            bar = "#" * filled + "." * (self.width - filled)
            left = "done" if self.done >= self.total else f"~{format_duration(self.eta())} left"
            return (
                f"{head}{self.done:>{len(str(self.total))}}/{self.total} [{bar}] {100 * frac:3.0f}%  "
                f"{format_duration(elapsed)} elapsed  {left}"
            )
        return f"{head}{self.done} done  {format_duration(elapsed)} elapsed"

    def update(self, final: bool = False) -> None:
        if self.mode == "off":
            return
        now = time.monotonic()
        if self.mode == "tty":
            if final or now - self.last_draw >= 0.1:
                self.stream.write("\r\x1b[2K" + self.line() + ("\n" if final else ""))
                self.stream.flush()
                self.last_draw = now
            return
        frac = self.done / self.total if self.total else 0.0
        if final and self.total and self.last_log_fraction >= 1.0:
            return  # the line saying "done" was just written
        if final or frac - self.last_log_fraction >= 0.1 or now - self.last_log_time >= 30.0:
            self.stream.write(self.line() + "\n")
            self.stream.flush()
            self.last_log_time = now
            self.last_log_fraction = frac


def progress(
    iterable: Iterable[T],
    desc: str = "",
    *,
    total: int | None = None,
    stream: IO[str] | None = None,
    width: int = 24,
    window: int = 20,
) -> Iterator[T]:
    """Yields the items of ``iterable`` while showing progress on stderr.

    Args:
      iterable: the items (e.g. the cells of a sweep).
      desc: a short label printed before the bar.
      total: the number of items; taken from ``len(iterable)`` if it has one.
      stream: where to write (default ``sys.stderr``).
      width: the bar's width in characters.
      window: the time left is estimated from the average time of the last ``window`` items.

    Yields:
      The items of ``iterable``, unchanged.
    """
    if total is None:
        try:
            total = len(iterable)  # type: ignore[arg-type]
        except TypeError:
            total = None
    bar = _Bar(total, desc, stream if stream is not None else sys.stderr, width, window)
    bar.update()
    finished = False
    try:
        for item in iterable:
            yield item
            bar.done += 1
            bar.times.append(time.monotonic())
            bar.update()
        finished = True
    finally:
        if finished:
            bar.update(final=True)
        elif bar.mode == "tty":  # interrupted: end the line so the next message starts cleanly
            try:
                bar.stream.write("\n")
                bar.stream.flush()
            except (ValueError, OSError):  # the stream is already closed
                pass
