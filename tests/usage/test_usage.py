"""Usage counts and audited reads: counted per client, arrangement, day and outcome."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from hub import db, usage
from hub.audit.models import AuditEntry


def test_counts_accumulate_across_recorders(app):
    first = usage.recorder(app)
    first.lookups("aeo_1", "US-CTPAT", "verify",
                  [("recognised", "EU-US"), ("recognised", "EU-US"), ("unknown_trader", None)])
    # a second worker of the same deployment adds to the same rows
    second = usage.Recorder(db.get_db(app), interval=0)
    second.lookups("aeo_1", "US-CTPAT", "verify", [("recognised", "EU-US")])
    second.lookups("aeo_1", "US-CTPAT", "match", [("no_match", None)])
    with app.app_context():
        rows = usage.summary(db.session(), since=dt.date.today())
    by_key = {(r["kind"], r["outcome"], r["arrangement"]): r["count"] for r in rows}
    assert by_key == {("verify", "recognised", "EU-US"): 3,
                      ("verify", "unknown_trader", None): 1,
                      ("match", "no_match", None): 1}


def test_buffered_recorder_writes_on_flush(app):
    buffered = usage.Recorder(db.get_db(app), interval=3600)
    buffered.lookups("aeo_2", "JP-AEO", "verify", [("not_recognised", None)])
    with app.app_context():
        assert usage.summary(db.session(), client_id="aeo_2") == []
    buffered.flush()
    with app.app_context():
        assert usage.summary(db.session(), client_id="aeo_2")[0]["count"] == 1
    buffered.close()


def test_reads_become_audit_entries(app):
    usage.recorder(app).read(usage.Read(
        client_id="aeo_3", client_administration="US", endpoint="/api/v1/verify",
        operators=[11, 12], arrangements={"EU-US"}, administrations={"EU"}))
    with app.app_context():
        entry = db.session().scalars(select(AuditEntry).where(
            AuditEntry.action == "registry.read")).one()
        assert entry.details["operators"] == [11, 12]
        assert "EU-US" in str(entry.details)


def _reads_of(app, client_id):
    with app.app_context():
        return db.session().scalars(select(AuditEntry).where(
            AuditEntry.action == "registry.read",
            AuditEntry.actor == f"client:{client_id}")).all()


def test_a_response_writes_what_is_due_after_it_went_out(app, client):
    found = usage.recorder(app)
    found.interval = 3600  # as deployed: buffered (the timer thread would wait an hour)
    try:
        found.read(usage.Read(client_id="aeo_4", client_administration="US",
                              endpoint="/api/v1/verify", operators=[21],
                              arrangements={"EU-US"}, administrations={"EU"}))
        response = client.get("/healthz")
        response.close()
        assert _reads_of(app, "aeo_4") == []  # not due yet: still buffered
        found.last_flush -= 3601  # the interval has passed
        response = client.get("/healthz")
        assert _reads_of(app, "aeo_4") == []  # written once the response is closed
        response.close()
        assert [e.details["operators"] for e in _reads_of(app, "aeo_4")] == [[21]]
        assert not found.pending
    finally:
        found.close()


def test_a_batch_of_reads_is_due_before_the_interval(app):
    buffered = usage.Recorder(db.get_db(app), interval=3600, batch=3)
    try:
        for n in range(2):
            buffered.read(usage.Read(client_id="aeo_5", client_administration="US",
                                     endpoint="/api/v1/verify", operators=[n],
                                     arrangements=set(), administrations={"EU"}))
        assert not buffered.due()
        buffered.read(usage.Read(client_id="aeo_5", client_administration="US",
                                 endpoint="/api/v1/verify", operators=[2],
                                 arrangements=set(), administrations={"EU"}))
        assert buffered.due()
        buffered.flush_if_due()
        (entry,) = _reads_of(app, "aeo_5")  # one write, one client, endpoint and scope
        assert entry.details["operators"] == [0, 1, 2] and entry.details["count"] == 3
        assert [r["operators"] for r in entry.details["requests"]] == [[0], [1], [2]]
        assert not buffered.due()
    finally:
        buffered.close()


def test_reads_are_audited_per_client_endpoint_and_scope(app):
    """Each write groups its reads: a client's reads through one endpoint of the same
    administrations and arrangements share an entry that lists every request."""
    buffered = usage.Recorder(db.get_db(app), interval=3600)
    reads = [("aeo_6", "/api/v1/verify", {"EU"}, {"EU-US"}, [1]),
             ("aeo_6", "/api/v1/verify", {"JP"}, {"JP-US"}, [2]),
             ("aeo_6", "/api/v1/verify", {"EU"}, {"EU-US"}, [3, 4]),
             ("aeo_6", "/api/v1/operators", {"EU"}, {"EU-US"}, [5]),
             ("aeo_7", "/api/v1/verify", {"EU"}, {"EU-US"}, [6])]
    try:
        for client_id, endpoint, administrations, arrangements, operators in reads:
            buffered.read(usage.Read(client_id=client_id, client_administration="US",
                                     endpoint=endpoint, operators=operators,
                                     arrangements=arrangements,
                                     administrations=administrations,
                                     details={"lookups": len(operators)}))
        buffered.flush()
        entries = _reads_of(app, "aeo_6")
        got = sorted((e.details["endpoint"], tuple(e.administrations),
                      tuple(e.details["arrangements"]), tuple(e.details["operators"]),
                      tuple(r["lookups"] for r in e.details["requests"]))
                     for e in entries)
        assert got == [("/api/v1/operators", ("EU", "US"), ("EU-US",), (5,), (1,)),
                       ("/api/v1/verify", ("EU", "US"), ("EU-US",), (1, 3, 4), (1, 2)),
                       ("/api/v1/verify", ("JP", "US"), ("JP-US",), (2,), (1,))]
        assert all(r["at"].endswith("+00:00") for e in entries
                   for r in e.details["requests"])
        assert [e.details["operators"] for e in _reads_of(app, "aeo_7")] == [[6]]
    finally:
        buffered.close()
