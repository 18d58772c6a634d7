"""The sync kill tests at full size (`make bench`: 60,000 operators, a real `kill -9` at
each named point, then the resumed run); `make test` runs them at smoke size in
tests/sync/test_sync_kills.py. Nothing is timed: the same guarantees are asserted."""

from __future__ import annotations

import pytest

from tests.sync.test_sync_kills import (  # noqa: F401 - collected here at this size
    feeds,
    test_a_feed_changed_after_a_kill_starts_again,
    test_a_killed_snapshot_resumes_and_readers_never_see_a_mix,
    test_a_notified_run_killed_mid_run_is_followed_up,
    test_a_scheduled_run_killed_mid_run_is_run_again_in_its_slot,
)

pytestmark = pytest.mark.benchmark


@pytest.fixture
def size(bench_scale):
    if bench_scale != "full":
        pytest.skip("the smoke size runs in tests/sync/test_sync_kills.py")
    return 60_000
