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
