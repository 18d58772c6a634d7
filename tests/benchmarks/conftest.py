"""Benchmarks: `make bench` runs them at full size, `make test` once at smoke size.

`AEOHUB_BENCH_SCALE` is `smoke` (default) or `full`. Benchmarks print their figures
beside a baseline measured in the same run; they assert correctness, never timings.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def bench_scale() -> str:
    scale = os.environ.get("AEOHUB_BENCH_SCALE", "smoke")
    if scale not in ("smoke", "full"):
        raise pytest.UsageError("AEOHUB_BENCH_SCALE must be smoke or full")
    return scale


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Full-size benchmarks run for minutes: lift the suite's per-test timeout for them."""
    if os.environ.get("AEOHUB_BENCH_SCALE", "smoke") == "full":
        for item in items:
            if "benchmarks" in str(item.fspath):
                item.add_marker(pytest.mark.timeout(7200))


@pytest.fixture(autouse=True)
def _cheap_password_hashes() -> None:
    """Benchmarks hash passwords and secrets at the production cost, as the hub does
    (this replaces the suite's cheap-hashing fixture of the same name)."""
