"""The audit chain: appends, verification, tamper detection, concurrency, export, head."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import hashlib
import itertools
import json
import math
import threading
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select, text

from hub import create_app, db
from hub.audit import chain, record, record_read, service, signing
from hub.audit.models import AuditEntry, AuditHead
from hub.db import Database


def _append(session, n, *, admin="EU", action="token.issued"):
    return [record(session, action, actor=f"client:c{i}", subject=f"client:c{i}",
                   administrations=[admin], details={"i": i, "on": dt.date(2026, 1, 2)})
            for i in range(n)]


def test_entries_chain_and_verify(session):
    entries = _append(session, 5)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
    assert entries[0].prev_hash == chain.GENESIS_HASH
    for before, after in itertools.pairwise(entries):
        assert after.prev_hash == before.hash
    assert entries[0].details == {"i": 0, "on": "2026-01-02"}
    assert entries[0].administrations == ["EU"]
    result = service.verify(session)
    assert result.ok and result.checked == 5 and result.head.hash == entries[-1].hash


def test_hash_is_sha256_of_the_documented_canonical_form(session):
    entry = record(session, "user.login", actor="user:ana", administrations=["US", "EU"],
                   details={"b": 1, "a": "é"})
    body = {"action": "user.login", "actor": "user:ana", "administrations": ["EU", "US"],
            "details": {"a": "é", "b": 1}, "prev_hash": chain.GENESIS_HASH,
            "recorded_at": entry.recorded_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "seq": entry.seq, "subject": None}

    raw = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert entry.hash == hashlib.sha256(raw.encode()).hexdigest()


def test_a_rolled_back_change_leaves_no_entry(session):
    record(session, "sync.succeeded", actor="system")
    nested = session.begin_nested()
    record(session, "connection.added", actor="cli")
    nested.rollback()
    record(session, "connection.removed", actor="cli")
    actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
    assert actions == ["sync.succeeded", "connection.removed"]
    assert service.verify(session).ok


def _commit_entries(database: Database, n: int, **kw) -> None:
    with database.session_scope() as s:
        _append(s, n, **kw)


def test_changed_entry_is_named_by_audit_verify(committed_db, runner):
    _commit_entries(committed_db, 6)
    ok = runner.invoke(args=["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "6 entries" in ok.output
    with committed_db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_entry SET actor = 'client:someone-else' "
                          "WHERE seq = 4"))
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1
    assert "broken at entry seq 4" in broken.output
    assert "does not match its hash" in broken.output
    assert "3 entries before it verify" in broken.output


def test_changed_details_json_is_detected(committed_db, runner):
    _commit_entries(committed_db, 3)
    with committed_db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_entry SET details = :d WHERE seq = 2"),
                      {"d": json.dumps({"i": 99, "on": "2026-01-02"})})
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1 and "entry seq 2" in broken.output


def test_rehashed_entry_breaks_the_link_to_the_next(committed_db, runner):
    """Rewriting an entry and its hash still shows: the next entry no longer fits."""
    _commit_entries(committed_db, 4)
    with committed_db.session_scope() as s:
        entry = s.scalars(select(AuditEntry).where(AuditEntry.seq == 2)).one()
        new_hash = chain.entry_hash(seq=2, recorded_at=entry.recorded_at, actor="forged",
                                    action=entry.action, administrations=entry.administrations,
                                    subject=entry.subject, details=entry.details,
                                    prev_hash=entry.prev_hash)
        s.execute(text("UPDATE audit_entry SET actor = 'forged', hash = :h WHERE seq = 2"),
                  {"h": new_hash})
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1
    assert "entry seq 3" in broken.output and "prev_hash" in broken.output


def test_removed_administration_link_is_detected(committed_db, runner):
    _commit_entries(committed_db, 3, admin="US")
    with committed_db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_entry_administration WHERE entry_id = "
                          "(SELECT id FROM audit_entry WHERE seq = 3)"))
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1 and "entry seq 3" in broken.output


def test_deleted_entry_is_detected(committed_db, runner):
    _commit_entries(committed_db, 5)
    with committed_db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_entry WHERE seq = 3"))
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1
    assert "entry seq 4" in broken.output and "entry 3 missing" in broken.output


def test_deleted_last_entries_are_detected_through_the_head(committed_db, runner):
    _commit_entries(committed_db, 5)
    with committed_db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_entry WHERE seq >= 4"))
    broken = runner.invoke(args=["audit", "verify"])
    assert broken.exit_code == 1
    assert "seq 5" in broken.output and "missing" in broken.output


def test_head_row_is_recreated_from_the_last_entry(committed_db):
    _commit_entries(committed_db, 2)
    with committed_db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_head"))
    _commit_entries(committed_db, 1)
    with committed_db.session_scope() as s:
        assert service.verify(s).ok
        assert s.scalar(select(AuditHead.seq)) == 3


def test_concurrent_appenders_keep_the_chain_valid(committed_db):
    """Threads on separate connections append at once; seqs stay gapless and linked."""
    per_thread, threads_n = 40, 4
    errors: list[BaseException] = []
    start = threading.Barrier(threads_n)

    def work(k: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                with committed_db.session_scope() as s:
                    record(s, "registry.read", actor=f"client:t{k}", administrations=["EU"],
                           details={"thread": k, "i": i})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    with committed_db.session_scope() as s:
        result = service.verify(s)
        assert result.ok, result.reason
        assert result.checked == per_thread * threads_n
        seqs = s.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)).all()
        assert seqs == list(range(1, per_thread * threads_n + 1))


def test_export_filters_by_administration_and_date(committed_db, runner, tmp_path):
    with committed_db.session_scope() as s:
        record(s, "registry.read", actor="client:us1", administrations=["EU", "US"],
               details={"n": 1})
        record(s, "token.issued", actor="client:jp1", administrations=["JP"])
    with committed_db.session_scope() as s:
        cut = s.scalars(select(AuditEntry.recorded_at).order_by(AuditEntry.seq.desc())).first()
    assert cut is not None
    since = (cut + dt.timedelta(microseconds=1)).isoformat()
    with committed_db.session_scope() as s:
        record(s, "sync.succeeded", actor="system", administrations=["EU"], details={"n": 2})
        record(s, "sync.failed", actor="system", administrations=["US"])
    everything = runner.invoke(args=["audit", "export", "--administration", "EU"])
    assert everything.exit_code == 0, everything.output
    lines = [json.loads(line) for line in everything.stdout.splitlines() if line.strip()]
    assert [e["action"] for e in lines] == ["registry.read", "sync.succeeded"]
    assert lines[0]["administrations"] == ["EU", "US"]
    assert set(lines[0]) >= {"seq", "recorded_at", "actor", "details", "prev_hash", "hash"}
    out = tmp_path / "eu.ndjson"
    recent = runner.invoke(args=["audit", "export", "-a", "eu", "--since", since,
                                 "-o", str(out)])
    assert recent.exit_code == 0, recent.output
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert [e["action"] for e in exported] == ["sync.succeeded"]
    # An exported entry can be checked against its hash by the administration's auditors.
    item = exported[0]
    assert chain.entry_hash(
        seq=item["seq"], recorded_at=dt.datetime.fromisoformat(item["recorded_at"]),
        actor=item["actor"], action=item["action"], administrations=item["administrations"],
        subject=item["subject"], details=item["details"], prev_hash=item["prev_hash"],
    ) == item["hash"]
    day = runner.invoke(args=["audit", "export", "-a", "US", "--since", "2999-01-01"])
    assert day.exit_code == 0 and day.stdout.strip() == ""
    bad = runner.invoke(args=["audit", "export", "-a", "US", "--since", "yesterday"])
    assert bad.exit_code == 2 and "--since" in bad.output
    typo = runner.invoke(args=["audit", "export", "-a", "ZZ"])
    assert typo.exit_code == 2 and typo.stdout == ""
    assert "no entry of the log concerns 'ZZ' (it names EU, JP, US)" in typo.output


def test_signed_head_verifies_with_the_published_key(app, client, committed_db):
    empty = client.get("/api/v1/audit/head")
    assert empty.status_code == 200
    assert empty.json["seq"] == 0 and empty.json["hash"] == chain.GENESIS_HASH
    _commit_entries(committed_db, 3)
    response = client.get("/api/v1/audit/head")
    assert response.status_code == 200
    body = response.json
    with app.app_context():
        last = db.session().scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        assert last is not None
        assert (body["seq"], body["hash"]) == (3, last.hash)
    assert body["algorithm"] == "EdDSA"
    key = body["key"]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and key["kid"]
    # Verify with the raw primitives, as a partner would, not with the hub's helper.
    public = Ed25519PublicKey.from_public_bytes(signing._b64url_decode(key["x"]))
    payload = json.dumps({"hash": body["hash"], "recorded_at": body["recorded_at"],
                          "seq": body["seq"]}, sort_keys=True, separators=(",", ":"))
    assert payload == body["signed_payload"]
    public.verify(signing._b64url_decode(body["signature"]), payload.encode())
    assert signing.verify_head(body)
    assert not signing.verify_head({**body, "seq": 2})
    assert not signing.verify_head({**body, "hash": "f" * 64})


def test_signing_key_is_derived_deterministically_or_configured():
    base = {"ENV": "default", "SECRET_KEY": "one"}
    first = signing.public_jwk(signing.signing_key(base))
    assert signing.public_jwk(signing.signing_key(dict(base))) == first
    assert signing.public_jwk(signing.signing_key({**base, "SECRET_KEY": "two"})) != first
    configured = signing.new_key_text()
    jwk = signing.public_jwk(signing.signing_key({**base, "AUDIT_SIGNING_KEY": configured}))
    assert jwk != first
    assert signing.public_jwk(signing.parse_key(configured)) == jwk
    with pytest.raises(signing.SigningKeyMissing):
        signing.signing_key({"ENV": "production", "SECRET_KEY": "s" * 40})
    with pytest.raises(ValueError, match="32 bytes"):
        signing.parse_key("c2hvcnQ")


def test_pem_signing_key_is_accepted():
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    assert signing.public_jwk(signing.parse_key(pem)) == signing.public_jwk(key)


def test_head_endpoint_refuses_production_without_a_key(committed_db, tmp_path):
    app = create_app({"ENV": "testing", "DATABASE_URL": committed_db.url,
                      "IMPORT_DIR": str(tmp_path)})
    app.config["ENV"] = "production"
    try:
        response = app.test_client().get("/api/v1/audit/head")
        assert response.status_code == 503
        assert response.mimetype == "application/problem+json"
        assert response.json is not None
        assert "AEOHUB_AUDIT_SIGNING_KEY" in response.json["detail"]
    finally:
        db.get_db(app).dispose()


def test_cli_head_and_keygen(runner):
    head = runner.invoke(args=["audit", "head"])
    assert head.exit_code == 0, head.output
    assert signing.verify_head(json.loads(head.stdout))
    key = runner.invoke(args=["audit", "keygen"])
    assert key.exit_code == 0 and signing.parse_key(key.stdout.strip())


def test_record_read_names_both_sides_and_the_arrangement(session):
    entry = record_read(session, client_id="us-cbp-risk", client_administration="US",
                        endpoint="POST /api/v1/verify/batch", operators=[5, 7, 9],
                        arrangements=["EU-US"], administrations=["EU"],
                        details={"decisions": {"recognised": 2, "not_recognised": 1}})
    assert entry.action == "registry.read" and entry.actor == "client:us-cbp-risk"
    assert entry.administrations == ["EU", "US"]
    assert entry.details == {"endpoint": "POST /api/v1/verify/batch", "count": 3,
                             "operators": [5, 7, 9], "arrangements": ["EU-US"],
                             "decisions": {"recognised": 2, "not_recognised": 1}}


def test_record_many_continues_the_chain_like_single_appends(session):
    first = record(session, "token.issued", actor="client:a", administrations=["EU"])
    written = service.record_many(session, [
        service.NewEntry("registry.read", actor=f"client:c{i}", subject=f"client:c{i}",
                         administrations=["US", "EU"] if i % 2 else ["EU"],
                         details={"i": i, "on": dt.date(2026, 1, 2)})
        for i in range(4)])
    last = record(session, "token.revoked", actor="client:a")
    session.flush()
    assert written == 4
    rows = session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
    assert [r.seq for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[1].prev_hash == first.hash and last.prev_hash == rows[4].hash
    assert [r.administrations for r in rows[1:5]] == [["EU"], ["EU", "US"], ["EU"],
                                                      ["EU", "US"]]
    assert rows[2].details == {"i": 1, "on": "2026-01-02"}
    for row in rows[1:5]:  # each hash is the documented one, as `record` computes it
        assert row.hash == service.recompute({
            "seq": row.seq, "recorded_at": row.recorded_at, "actor": row.actor,
            "action": row.action, "administrations": row.administrations,
            "subject": row.subject, "details": row.details, "prev_hash": row.prev_hash})
    result = service.verify(session)
    assert result.ok and result.checked == 6 and result.head.hash == last.hash
    assert service.record_many(session, []) == 0


def test_details_are_stored_as_exact_json_types():
    class Level(enum.IntEnum):
        HIGH = 2

    class Kind(enum.StrEnum):
        READ = "read"

    # The int key 3 is deliberate: normalise_details turns keys into strings.
    details: dict[Any, Any] = {
        "level": Level.HIGH, "kind": Kind.READ, "pair": (1, 2), "set": {"b", "a"},
        "amount": decimal.Decimal("1.50"), "on": dt.date(2026, 1, 2), "ratio": 0.1,
        "nested": [{"k": Kind.READ}], 3: None, "flag": True}
    clean = chain.normalise_details(details)
    assert clean == json.loads(json.dumps(clean))
    assert clean == {"level": 2, "kind": "read", "pair": [1, 2], "set": ["a", "b"],
                     "amount": "1.50", "on": "2026-01-02", "ratio": 0.1,
                     "nested": [{"k": "read"}], "3": None, "flag": True}
    assert type(clean["level"]) is int and type(clean["kind"]) is str
    assert type(clean["nested"][0]["k"]) is str and clean["flag"] is True
    with pytest.raises(ValueError):
        chain.normalise_details({"x": math.nan})
