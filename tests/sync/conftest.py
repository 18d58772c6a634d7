"""Fixtures of the sync tests: the reference data loaded, a CSV connection, and a watch
on the cyclic collector."""

from __future__ import annotations

import gc
from collections.abc import Callable

import pytest

from hub import db
from hub.arrangements.service import load_reference_data
from hub.sync import connections as conns
from hub.sync import engine
from tests.sync.feeds import write_feed


@pytest.fixture
def hub_app(app):
    with app.app_context():
        load_reference_data(db.session())
        db.session().commit()
    return app


@pytest.fixture
def feed(hub_app, tmp_path):
    return tmp_path / "eu.csv"


@pytest.fixture
def connection_id(hub_app, feed):
    write_feed(feed, [])
    with hub_app.app_context():
        session = db.session()
        row = conns.add_connection(
            session, conns.SyncSettings.from_config(hub_app.config), name="eu-csv",
            connector_type="csv_snapshot", programmes=["EU-AEO"],
            config={"path": str(feed), "programme": "EU-AEO", "batch_size": 2},
            schedule="interval:1h")
        session.commit()
        return row.id


@pytest.fixture
def collector_at(monkeypatch) -> Callable[[str], list[bool]]:
    """`collector_at("_classify")`: a list that records, at each call of that `SyncJob`
    method, whether the cyclic garbage collector was running."""

    def watch(name: str) -> list[bool]:
        seen: list[bool] = []
        method = getattr(engine.SyncJob, name)

        def watched(self, *args, **kwargs):
            seen.append(gc.isenabled())
            return method(self, *args, **kwargs)

        monkeypatch.setattr(engine.SyncJob, name, watched)
        return seen

    return watch
