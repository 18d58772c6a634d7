"""Dashboard logins, failed ones too, are audited; judgements too."""

from __future__ import annotations

from sqlalchemy import select

from hub import db
from hub.audit.models import AuditEntry
from hub.web.users import create_user
from tests.web.conftest import sign_in


def test_logins_are_audited(app):
    with app.app_context():
        create_user(db.session(), "root", "a long enough password", hub_admin=True)
        db.session().commit()
    client = app.test_client()
    assert sign_in(client, "root", "wrong password here").status_code == 401
    assert sign_in(client, "root", "a long enough password").status_code == 302
    with app.app_context():
        entries = db.session().scalars(select(AuditEntry).where(
            AuditEntry.action.in_(["user.login", "user.login_failed"]))
            .order_by(AuditEntry.seq)).all()
    assert [(e.action, e.actor) for e in entries] == [("user.login_failed", "system"),
                                                      ("user.login", "user:root")]
    assert all("password" not in str(e.details) for e in entries)
