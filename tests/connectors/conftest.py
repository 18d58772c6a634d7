"""Fixtures for connector tests: a real scripted node on loopback, and contexts."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.base import ConnectorContext
from tests.connectors.nodeserver import NodeServer, RunningServer


@pytest.fixture
def node() -> Iterator[NodeServer]:
    """A node with 25 records, on 127.0.0.1, requiring the bearer token."""
    app = NodeServer()
    app.add_records(25)
    running = RunningServer(app)
    app.url = running.url
    try:
        yield app
    finally:
        running.stop()


@pytest.fixture
def context(tmp_path: Path) -> ConnectorContext:
    """Loopback only; files only under tmp_path/import."""
    import_dir = tmp_path / "import"
    import_dir.mkdir()
    return ConnectorContext(
        allowed_hosts=frozenset({"127.0.0.1"}), import_dir=import_dir,
        logger=logging.getLogger("connectors.test"),
    )
