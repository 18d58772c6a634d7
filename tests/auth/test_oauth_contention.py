"""Issuing and revoking never fail open while another writer holds the database.

A writer that has appended to the audit chain and not yet committed (as a sync does)
holds SQLite's write lock, or PostgreSQL's lock on the chain head; real snapshot syncs
run alongside in the last test. Meanwhile the token
and revocation endpoints wait a bounded time and answer 503 with Retry-After: never a
500, and never a 200 for a revocation while the token still works. Once the writer is
done, they succeed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from hub import create_app, db
from hub.audit import record
from hub.auth.guard import principal_of
from hub.db import Database
from hub.sync import connections as conns
from hub.sync import engine
from tests.auth.hubkit import live_server, load_reference, make_client
from tests.sync.feeds import eu_row, write_feed

GRANT = {"grant_type": "client_credentials"}
#: operators renamed by every sync round of the real-sync test: enough for a switch that
#: holds the write lock while tokens are issued and revoked
OPERATORS = 500


@pytest.fixture
def hub(committed_db: Database) -> Iterator[tuple[str, Any]]:
    load_reference(committed_db)
    app = create_app({"ENV": "testing", "DATABASE_URL": committed_db.url,
                      "OAUTH_WRITE_WAIT_SECONDS": 0.3})
    with live_server(app) as base:
        yield base, app
    app.extensions["aeohub.db"].dispose()


def _post(url: str, data: dict[str, str], auth: Any) -> requests.Response:
    # Well below SQLite's 30 s busy timeout: an unbounded wait fails the test.
    with requests.post(url, data=data, auth=auth, timeout=15) as response:
        return response


def _active(app: Any, token: str) -> bool:
    with app.app_context():
        return principal_of(db.reader(), token) is not None


def _hold_the_chain(database: Database) -> Any:
    """An open writer that has appended to the audit chain (as a sync's step does)."""
    session = database.sessionmaker()
    if database.dialect == "sqlite":
        session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
    record(session, "test.long_writer", actor="test")
    return session


def test_a_held_write_lock_gives_503_then_the_revocation_succeeds(hub, committed_db):
    base, app = hub
    creds = make_client(committed_db, "EU-AEO", "verify")
    auth = (creds.client_id, creds.secret)
    token = _post(base + "/oauth/token", GRANT, auth).json()["access_token"]
    writer = _hold_the_chain(committed_db)
    try:
        revoked = _post(base + "/oauth/revoke", {"token": token}, auth)
        assert revoked.status_code == 503
        assert revoked.json()["error"] == "temporarily_unavailable"
        assert int(revoked.headers["Retry-After"]) >= 1
        assert _active(app, token)  # not reported revoked, and indeed not revoked
        issued = _post(base + "/oauth/token", GRANT, auth)
        assert issued.status_code == 503
        assert "Retry-After" in issued.headers
    finally:
        writer.rollback()
        writer.close()
    assert _post(base + "/oauth/revoke", {"token": token}, auth).status_code == 200
    assert not _active(app, token)
    assert _post(base + "/oauth/token", GRANT, auth).status_code == 200


def test_concurrent_writers_never_make_a_500_or_a_false_revocation(hub, committed_db):
    base, app = hub
    creds = make_client(committed_db, "EU-AEO", "verify")
    auth = (creds.client_id, creds.secret)
    stop = threading.Event()

    def write_constantly() -> None:
        while not stop.is_set():
            session = _hold_the_chain(committed_db)
            try:
                stop.wait(0.05)  # the writer's own work, holding the lock
                session.commit()
            finally:
                session.close()
            stop.wait(0.05)  # between its steps, as a sync between batches

    writers = [threading.Thread(target=write_constantly) for _ in range(2)]
    for thread in writers:
        thread.start()
    statuses: list[int] = []
    try:
        for _ in range(12):
            issued = _post(base + "/oauth/token", GRANT, auth)
            statuses.append(issued.status_code)
            if issued.status_code != 200:
                continue
            token = issued.json()["access_token"]
            revoked = _post(base + "/oauth/revoke", {"token": token}, auth)
            statuses.append(revoked.status_code)
            if revoked.status_code == 200:
                assert not _active(app, token)
            else:
                assert "Retry-After" in revoked.headers
                assert _active(app, token)
    finally:
        stop.set()
        for thread in writers:
            thread.join(10)
    assert set(statuses) <= {200, 503}
    assert 200 in statuses


def test_real_syncs_alongside_never_make_a_500_or_a_false_revocation(committed_db, tmp_path):
    """The same, with real snapshot syncs (each switching a changed registry) running."""
    load_reference(committed_db)
    app = create_app({"ENV": "testing", "DATABASE_URL": committed_db.url,
                      "IMPORT_DIR": str(tmp_path), "OAUTH_WRITE_WAIT_SECONDS": 0.3})
    settings = conns.SyncSettings.from_config(app.config)
    feed = write_feed(tmp_path / "eu.csv", [eu_row(n) for n in range(1, OPERATORS + 1)])
    with committed_db.session_scope(write=True) as session:
        connection = conns.add_connection(
            session, settings, name="eu-csv", connector_type="csv_snapshot",
            programmes=["EU-AEO"], config={"path": str(feed), "programme": "EU-AEO"},
            schedule="interval:1h")
        connection_id = connection.id
    creds = make_client(committed_db, "EU-AEO", "verify")
    auth = (creds.client_id, creds.secret)
    stop = threading.Event()
    runs: list[int] = []

    def sync_constantly() -> None:
        round_ = 0
        while not stop.is_set():
            round_ += 1
            # Every round changes every operator's name: real writes for the switch.
            write_feed(feed, [eu_row(n, legal_name=f"Muster {round_} {n} GmbH")
                              for n in range(1, OPERATORS + 1)])
            engine.run_sync(committed_db, settings, connection_id)
            runs.append(round_)

    syncer = threading.Thread(target=sync_constantly)
    statuses: list[int] = []
    try:
        with live_server(app) as base:
            syncer.start()
            while syncer.is_alive() and (len(runs) < 3 or len(statuses) < 10):
                issued = _post(base + "/oauth/token", GRANT, auth)
                statuses.append(issued.status_code)
                if issued.status_code != 200:
                    continue
                token = issued.json()["access_token"]
                revoked = _post(base + "/oauth/revoke", {"token": token}, auth)
                statuses.append(revoked.status_code)
                assert _active(app, token) is (revoked.status_code != 200)
                if revoked.status_code != 200:
                    assert "Retry-After" in revoked.headers
    finally:
        stop.set()
        if syncer.is_alive():
            syncer.join(120)
        app.extensions["aeohub.db"].dispose()
    assert len(runs) >= 3  # the syncs ran (a failing one would have ended the thread)
    assert set(statuses) <= {200, 503}
    assert 200 in statuses
