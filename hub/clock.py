"""The hub's clock: the one place that says what time it is.

Every decision that depends on the time of day reads `now()`: token and secret expiry
(`hub.auth`), leases (`hub.sync.lease`), schedules and back-off, webhook retries, and
every timestamp the hub writes. It is the system clock
unless something installs another source with `use()`, which a test does to move time
forward instead of sleeping. Durations measured inside one process (timeouts, metrics)
keep using `time.monotonic()`, which no clock change may disturb.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Source = Callable[[], dt.datetime]


def system_now() -> dt.datetime:
    """The system clock, timezone-aware in UTC."""
    return dt.datetime.now(dt.UTC)


#: The sources in use, the last one current (`use()` pushes and pops).
_sources: list[Source] = [system_now]


def now() -> dt.datetime:
    """The current time, timezone-aware in UTC."""
    return _sources[-1]()


def timestamp() -> float:
    """The current time in seconds since the epoch (`now()` as a number)."""
    return now().timestamp()


@contextmanager
def use(source: Source) -> Iterator[None]:
    """Read the time from `source` in the block, in every thread of the process.

    `source` must return timezone-aware datetimes. Meant for tests: the hub itself always
    runs on the system clock.
    """
    _sources.append(source)
    try:
        yield
    finally:
        _sources.remove(source)
