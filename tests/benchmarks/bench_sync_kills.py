"""The sync kill tests at full size (`make bench`: 60,000 operators, a real `kill -9` at
each named point, then the resumed run); `make test` runs them at smoke size in
tests/sync/test_sync_kills.py. Nothing is timed: the same guarantees are asserted."""

from __future__ import annotations

import pytest

from tests.sync.test_sync_kills import (  # noqa: F401 - collected here at this size
    feeds,
    test_a_feed_changed_after_a_kill_starts_again,
    test_a_killed_snapshot_resumes_and_readers_never_see_a_mix,
)

pytestmark = pytest.mark.benchmark


@pytest.fixture
def size(bench_scale):
    if bench_scale != "full":
        pytest.skip("the smoke size runs in tests/sync/test_sync_kills.py")
    return 60_000
