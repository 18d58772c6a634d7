"""Changes that must take effect at once: arrangement suspension and consent withdrawal
against a 2-worker gunicorn server (made from another process), the change feed's
tombstones, and a feed that never skips an event committed out of order."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading

import pytest
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.arrangements.service import change_status
from hub.db import Database
from hub.notify import views
from hub.registry.models import OperatorEvent
from tests.auth.hubkit import (
    ROOT,
    bearer,
    gunicorn_server,
    load_reference,
    make_client,
    make_operator,
    programmes,
)

SCOPES = "verify,registry:read,changes:read"


def _seed(database: Database) -> int:
    load_reference(database)
    views.run_daily(database)  # the scheduler announces the grants at start-up
    with database.session_scope(write=True) as session:
        progs = programmes(session)
        eu_op = make_operator(session, progs["EU-AEO"], 1, category="AEOF")
        return eu_op


def _visible(base: str, headers: dict[str, str], oid: int) -> int:
    codes = set()
    for _ in range(6):  # several requests, so that both workers answer
        with requests.get(f"{base}/api/v1/operators/{oid}", headers=headers,
                          timeout=10) as response:
            codes.add(response.status_code)
    assert len(codes) == 1, codes
    return codes.pop()


@pytest.mark.slow
def test_suspension_and_consent_withdrawal_reach_every_worker(committed_db):
    eu_op = _seed(committed_db)
    us = make_client(committed_db, "US-CTPAT", SCOPES)
    headers = bearer(committed_db, us)
    with gunicorn_server(committed_db.url) as base:
        assert _visible(base, headers, eu_op) == 200
        watch = views.ReferenceWatch(committed_db)  # as the scheduler process runs it
        # Another process suspends EU-US.
        script = ("import datetime as dt; from hub.db import Database; "
                  "from hub.arrangements.service import change_status; "
                  f"db = Database({committed_db.url!r}); "
                  "s = db.session_scope(write=True).__enter__(); "
                  "change_status(s, 'EU-US', 'suspend', dt.datetime.now(dt.UTC).date()); "
                  "s.commit(); s.close()")
        subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=60)
        assert _visible(base, headers, eu_op) == 404  # at once: the policy judges each read
        # The scheduler's watch sees the reference data change and records the tombstone.
        assert watch() is not None
        with requests.get(f"{base}/api/v1/changes", headers=headers, timeout=10) as feed:
            kinds = [(c["kind"], c.get("reason")) for c in feed.json()["changes"]
                     if c["operator_id"] == eu_op]
        assert ("tombstone", "no_longer_shared") in kinds

        # Japan still sees it; the operator withdraws consent (another process).
        jp = bearer(committed_db, make_client(committed_db, "JP-AEO", SCOPES))
        assert _visible(base, jp, eu_op) == 200
        with requests.get(f"{base}/api/v1/changes", headers=jp, timeout=10) as feed:
            cursor = feed.json()["next_cursor"]
        script = ("from hub.db import Database; from tests.auth.hubkit import set_consent; "
                  f"set_consent(Database({committed_db.url!r}), {eu_op}, False)")
        subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=60)
        assert _visible(base, jp, eu_op) == 404
        with requests.get(f"{base}/api/v1/changes?cursor={cursor}", headers=jp,
                          timeout=10) as feed:
            changes = feed.json()["changes"]
        assert [(c["kind"], c.get("reason")) for c in changes] == [
            ("tombstone", "no_longer_shared")]


def test_feed_never_skips_an_event_committed_out_of_order(ref_app, committed_db, backend):
    if backend != "postgresql":
        pytest.skip("SQLite serialises writers; interleaving needs PostgreSQL")
    client = ref_app.test_client()
    headers = bearer(committed_db, make_client(committed_db, "JP-AEO", SCOPES))
    engine = committed_db.engine
    seen: list[int] = []
    cursor = None

    def poll() -> None:
        nonlocal cursor
        url = "/api/v1/changes" + (f"?cursor={cursor}" if cursor else "")
        page = client.get(url, headers=headers).json
        seen.extend(c["event_id"] for c in page["changes"] if c["event_id"] is not None)
        cursor = page["next_cursor"]

    with Session(engine) as slow, Session(engine) as fast:
        eu_slow = programmes(slow)["EU-AEO"]
        make_operator(slow, eu_slow, 100, category="AEOS")  # id assigned, not committed
        eu_fast = programmes(fast)["EU-AEO"]
        make_operator(fast, eu_fast, 101, category="AEOS")
        fast.commit()  # the larger event id commits first
        poll()
        poll()
        slow.commit()
    for _ in range(3):
        poll()
    with Session(engine) as check:
        every = sorted(check.scalars(select(OperatorEvent.id)))
    assert sorted(seen) == every and len(seen) == len(set(seen))


def test_interleaved_writers_with_a_polling_client(ref_app, committed_db, backend):
    """Several writers commit concurrently while a client polls; nothing is lost."""
    client = ref_app.test_client()
    headers = bearer(committed_db, make_client(committed_db, "JP-AEO", SCOPES))
    seen: list[int] = []
    state = {"cursor": None}
    done = threading.Event()

    def writer(offset: int) -> None:
        for i in range(15):
            with committed_db.session_scope(write=True) as session:
                make_operator(session, programmes(session)["EU-AEO"], offset + i,
                              category="AEOF")

    def poll() -> None:
        url = "/api/v1/changes" + (f"?cursor={state['cursor']}" if state["cursor"] else "")
        page = client.get(url, headers=headers).json
        seen.extend(c["event_id"] for c in page["changes"])
        state["cursor"] = page["next_cursor"]

    threads = [threading.Thread(target=writer, args=(1000 * k,)) for k in range(1, 4)]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        poll()
    for thread in threads:
        thread.join()
    done.set()
    for _ in range(3):
        poll()
    assert len(seen) == len(set(seen)) == 45
    _ = dt, change_status
