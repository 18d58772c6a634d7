"""Services own their transactions (`hub.db.transaction`, `@transactional`): a service's
writes are committed when the outermost transaction ends and rolled back, all of them,
when it fails; a request whose service fails answers a problem document and leaves
nothing written."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub import db
from hub.auth.models import OAuthClient, OAuthToken
from hub.db import Database, get_db, transaction, transactional
from hub.errors import Conflict
from hub.registry.models import Administration
from tests.auth.hubkit import bearer, load_reference, make_client


@transactional
def _add(session: Session, code: str) -> Administration:
    row = Administration(code=code, name=f"administration {code}")
    session.add(row)
    session.flush()
    return row


@transactional
def _add_then_fail(session: Session, code: str) -> None:
    _add(session, code)
    raise Conflict(f"{code} cannot be kept")


def _codes(database: Database) -> set[str]:
    """The administration codes committed, as another connection sees them."""
    with database.session_scope() as other:
        return set(other.scalars(select(Administration.code)))


def test_a_service_commits_its_writes(app: Flask) -> None:
    with app.app_context():
        _add(db.session(), "T1")
        assert "T1" in _codes(get_db())


def test_a_failing_service_leaves_nothing_written(app: Flask) -> None:
    with app.app_context():
        session = db.session()
        with pytest.raises(Conflict):
            _add_then_fail(session, "T2")  # its inner `_add` flushed, and joined it
        assert "T2" not in _codes(get_db())
        assert session.scalar(select(Administration).where(Administration.code == "T2")
                              ) is None


def test_an_inner_transaction_commits_only_with_the_outer_one(app: Flask) -> None:
    with app.app_context():
        database, session = get_db(), db.session()
        with transaction(session):
            _add(session, "T3")
            assert "T3" not in _codes(database)  # not before the outer block ends
        assert "T3" in _codes(database)
        with pytest.raises(RuntimeError), transaction(session):
            _add(session, "T4")
            raise RuntimeError("the outer block fails after its inner one returned")
        assert "T4" not in _codes(database)
        assert session.info.get(db.TRANSACTION_DEPTH_KEY) is None


def test_services_in_a_session_scope_join_it(app: Flask) -> None:
    database = get_db(app)
    with pytest.raises(Conflict), database.session_scope(write=True) as session:
        _add(session, "T5")
        raise Conflict("the command fails after the service returned")
    assert "T5" not in _codes(database)


def test_a_failing_admin_request_answers_a_problem_and_writes_nothing(
        app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """Disabling a client revokes its tokens and marks it disabled, then audits; when the
    audit fails, the answer is a problem document and the client and its tokens are as
    they were."""
    database = get_db(app)
    load_reference(database)
    admin = bearer(database, make_client(database, None, "admin"))
    partner = make_client(database, "EU-AEO", "verify")
    bearer(database, partner)

    def failing_record(*_args: Any, **_kwargs: Any) -> None:
        raise Conflict("the audit log refused the entry")

    monkeypatch.setattr("hub.auth.service.record", failing_record)
    answer = app.test_client().post(f"/api/v1/admin/clients/{partner.client_id}/disable",
                                    headers=admin)
    assert answer.status_code == 409
    assert answer.mimetype == "application/problem+json"
    assert answer.get_json()["detail"] == "the audit log refused the entry"
    with database.session_scope() as session:
        client = session.scalars(select(OAuthClient).where(
            OAuthClient.client_id == partner.client_id)).one()
        assert client.disabled_at is None
        assert session.scalar(select(func.count()).select_from(OAuthToken).where(
            OAuthToken.client_pk == client.id, OAuthToken.revoked_at.is_not(None))) == 0
