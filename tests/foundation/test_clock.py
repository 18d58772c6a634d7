"""The hub's clock (`hub.clock`): every timestamp the hub writes reads it, a source
installed with `use()` applies to every thread and is removed when its block ends."""

from __future__ import annotations

import datetime as dt
import threading

import pytest

from hub import clock as hub_clock
from tests.waiting import TestClock

MOMENT = dt.datetime(2031, 5, 4, 12, 0, tzinfo=dt.UTC)


def test_a_source_applies_in_every_thread_until_its_block_ends() -> None:
    seen: list[dt.datetime] = []
    with hub_clock.use(lambda: MOMENT):
        thread = threading.Thread(target=lambda: seen.append(hub_clock.now()))
        thread.start()
        thread.join(5)
        assert seen == [MOMENT]
        assert hub_clock.now() == MOMENT and hub_clock.timestamp() == MOMENT.timestamp()
        with hub_clock.use(lambda: MOMENT + dt.timedelta(days=1)):
            assert hub_clock.now() == MOMENT + dt.timedelta(days=1)
        assert hub_clock.now() == MOMENT
    assert abs(hub_clock.now() - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)


def test_the_test_clock_moves_the_hubs_time_forward_only(clock: TestClock) -> None:
    before = hub_clock.now()
    moved = clock.advance(3600)
    assert moved - before >= dt.timedelta(hours=1)
    assert hub_clock.now() >= moved
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1)
