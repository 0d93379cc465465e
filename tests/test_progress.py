"""``bontheory.runner.progress``: tqdm's bar on a terminal, plain lines in a log, silenced on request."""

from __future__ import annotations

import io
import re

import pytest

from bontheory import runner
from bontheory.runner import progress


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_a_log_gets_plain_lines_not_redraws(monkeypatch):
    monkeypatch.delenv("BONTHEORY_PROGRESS", raising=False)
    log = io.StringIO()
    assert list(progress(range(50), desc="sweep", file=log)) == list(range(50))
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert len(lines) == 2  # the start and the end: a fast loop writes nothing in between
    assert lines[0].startswith("sweep:") and "0/50" in lines[0]
    assert lines[-1].startswith("sweep: 100%") and "50/50" in lines[-1]


def test_a_log_gets_a_line_per_interval(monkeypatch):
    monkeypatch.delenv("BONTHEORY_PROGRESS", raising=False)
    monkeypatch.setattr(runner, "LOG_INTERVAL", 0.0)
    log = io.StringIO()
    list(progress(range(5), desc="slow", file=log))
    counts = [re.search(r" (\d+/5) ", line).group(1) for line in log.getvalue().splitlines()]
    assert counts[:6] == [f"{k}/5" for k in range(6)]  # one line per item when the interval is 0


def test_a_terminal_gets_a_bar_with_the_time_left(monkeypatch):
    monkeypatch.delenv("BONTHEORY_PROGRESS", raising=False)
    tty = _Tty()
    list(progress(range(3), desc="d", file=tty))
    redraws = tty.getvalue().split("\r")
    assert len(redraws) >= 3  # redrawn in place
    assert "3/3" in redraws[-1] and "<" in redraws[-1]  # [elapsed<left, rate]
    tty = _Tty()
    list(progress(iter(range(3)), desc="gen", file=tty))  # no len(): counts without a bar
    assert "gen: 3it" in tty.getvalue()


@pytest.mark.parametrize("value, expect", [("0", "off"), ("off", "off"), ("1", "tty")])
def test_the_environment_switch(monkeypatch, value, expect):
    monkeypatch.setenv("BONTHEORY_PROGRESS", value)
    log = io.StringIO()
    assert list(progress([1, 2], desc="x", file=log)) == [1, 2]
    if expect == "off":
        assert log.getvalue() == ""
    else:
        assert "\r" in log.getvalue()  # the terminal bar even though the stream is not a terminal
