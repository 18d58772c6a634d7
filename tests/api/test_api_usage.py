"""Partner look-ups are counted per client, arrangement, day and outcome, and every
response carrying registry data leaves one audited read."""

from __future__ import annotations

import datetime as dt
import random

from sqlalchemy import select

from hub import db, usage
from hub.audit.models import AuditEntry
from hub.registry.models import Operator
from hub.usage import _iso_time
from tests.auth.hubkit import bearer, make_client, make_operator, programmes


def test_verify_match_and_reads_are_counted_and_audited(ref_app):
    database = ref_app.extensions["aeohub.db"]
    with database.session_scope(write=True) as session:
        eu = programmes(session)["EU-AEO"]
        op_id = make_operator(session, eu, 1, category="AEOF")
        make_operator(session, eu, 2, category="AEOC")  # not in CBP's scope
    with database.session_scope() as session:
        recognised, other = (session.get(Operator, op_id).trader_id,
                             session.scalars(select(Operator.trader_id)
                                             .where(Operator.id != op_id)).one())
    cbp = make_client(database, "US-CTPAT", "verify match registry:read")
    headers = bearer(database, cbp)
    client = ref_app.test_client()
    batch = {"traders": [
        {"scheme": "EORI", "value": recognised},
        {"scheme": "EORI", "value": other},
        {"scheme": "EORI", "value": "DE999999999999999"},
    ]}
    answer = client.post("/api/v1/verify/batch", json=batch, headers=headers)
    assert answer.status_code == 200, answer.get_json()
    client.post("/api/v1/match", headers=headers,
                json={"trader": {"name": "Nobody Known Ltd",
                                 "address": {"street": "1 Nowhere", "city": "Lima",
                                             "country": "PE"}}})
    listed = client.get("/api/v1/operators", headers=headers)
    assert listed.status_code == 200
    with ref_app.app_context():
        rows = usage.summary(db.session(), since=dt.date.today(), client_id=cbp.client_id)
        reads = db.session().scalars(select(AuditEntry).where(
            AuditEntry.action == "registry.read").order_by(AuditEntry.seq)).all()
    counts = {(r["kind"], r["outcome"], r["arrangement"]): r["count"] for r in rows}
    assert counts[("verify", "recognised", "EU-US")] == 1
    assert sum(n for (kind, outcome, _a), n in counts.items()
               if kind == "verify" and outcome != "recognised") == 2
    assert counts[("match", "no_match", None)] == 1
    assert all(r["programme"] == "US-CTPAT" for r in rows)
    assert len(reads) == 2  # the batch and the list; the empty match showed nobody
    assert op_id in reads[0].details["operators"]
    assert "EU-US" in str(reads[0].details)


def test_read_times_are_written_as_datetime_writes_them():
    rng = random.Random(7)
    moments = [rng.uniform(1.6e9, 2.0e9) for _ in range(20_000)]
    moments += [1.9999999, 1764357000.9999996, 1764357000.0005, 1764357000.9995, 0.0]
    for moment in moments:
        assert _iso_time(moment) == dt.datetime.fromtimestamp(moment, dt.UTC).isoformat(
            timespec="milliseconds"), moment
