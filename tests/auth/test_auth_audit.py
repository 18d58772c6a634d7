"""Tokens issued and revoked, and client changes, land in the audit log."""

from __future__ import annotations

from sqlalchemy import select

from hub import db
from hub.arrangements.service import load_reference_data
from hub.audit.models import AuditEntry
from hub.auth import service


def actions(app):
    with app.app_context():
        return [(e.action, e.subject) for e in
                db.session().scalars(select(AuditEntry).order_by(AuditEntry.seq))]


def test_token_and_client_lifecycle_is_audited(app, client):
    with app.app_context():
        session = db.session()
        load_reference_data(session)
        created = service.create_client(session, name="cbp", programme="US-CTPAT",
                                        scopes="verify")
        session.commit()
        client_id, secret = created.client.client_id, created.secret
        assert secret is not None  # a client without a JWK set gets a secret
    issued = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                         auth=(client_id, secret))
    assert issued.status_code == 200
    token = issued.get_json()["access_token"]
    revoked = client.post("/oauth/revoke", data={"token": token}, auth=(client_id, secret))
    assert revoked.status_code == 200
    with app.app_context():
        service.rotate_secret(db.session(), client_id)
        service.disable_client(db.session(), client_id)
        db.session().commit()
    seen = [a for a, _ in actions(app)]
    for expected in ("client.created", "token.issued", "token.revoked",
                     "client.secret_rotated", "client.disabled"):
        assert expected in seen, seen
    with app.app_context():
        entries = db.session().scalars(select(AuditEntry)).all()
        assert all(token not in str(e.details) and secret not in str(e.details)
                   for e in entries)
