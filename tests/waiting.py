"""Waiting without fixed sleeps: conditions polled up to a deadline, and a clock that a
test moves forward.

- `wait_until(predicate, timeout)`: poll every 0.05 s until `predicate()` is true; False
  when `timeout` ran out first. For what happens in other threads and processes.
- `TestClock` (the `clock` fixture of `tests/conftest.py`): the hub's clock
  (`hub.clock`) running `advance()`d seconds ahead of the system clock, for anything the
  hub decides by the time of day: token expiry, leases, schedules, retries.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable

POLL_SECONDS = 0.05


def wait_until(predicate: Callable[[], object], timeout: float = 10.0,
               interval: float = POLL_SECONDS) -> bool:
    """Whether `predicate()` became true within `timeout` seconds (checked every
    `interval`, and once more at the deadline)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


class TestClock:
    """The system clock plus an offset that only grows: `advance(seconds)` moves the hub's
    time forward at once, in every thread of the process (not in other processes)."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    def __init__(self) -> None:
        self._offset = dt.timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> dt.datetime:
        with self._lock:
            offset = self._offset
        return dt.datetime.now(dt.UTC) + offset

    def advance(self, seconds: float) -> dt.datetime:
        """Move the clock `seconds` forward; returns the new time."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += dt.timedelta(seconds=seconds)
        return self.now()

    def next_hour(self) -> dt.datetime:
        """Move the clock to just after the next full hour: an hourly schedule's next slot,
        with the hour ahead of it (a test then stays in that slot however far it advances
        within the hour, whatever time it runs at)."""
        now = self.now()
        return self.advance(3601 - now.minute * 60 - now.second - now.microsecond / 1e6)
