"""Dashboard sessions live on the server: signing out, a password change, disabling the
user and "sign out everywhere" end them, and so do the idle and absolute timeouts; a copy
of an ended session's cookie opens nothing."""

from __future__ import annotations

import datetime as dt

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from hub import clock
from hub.db import get_db
from hub.web import users
from hub.web.models import DashboardSession
from tests.web.conftest import csrf_of, sign_in

PASSWORD = "correct horse battery"


@pytest.fixture
def admin(app: Flask) -> str:
    with get_db(app).session_scope(write=True) as session:
        users.create_user(session, "hub-admin", PASSWORD, hub_admin=True)
    return "hub-admin"


def _signed_in(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    assert sign_in(client, username, PASSWORD).status_code == 302
    assert client.get("/dashboard/").status_code == 200
    return client


def _opens(client: FlaskClient) -> bool:
    response = client.get("/dashboard/")
    assert response.status_code in (200, 302)
    return response.status_code == 200


def _replay(app: Flask, client: FlaskClient) -> FlaskClient:
    """A new browser holding a copy of `client`'s cookie."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    copy = app.test_client()
    copy.set_cookie("session", cookie.value)
    return copy


def _sessions(app: Flask) -> int:
    with get_db(app).session_scope() as session:
        return int(session.scalar(select(func.count()).select_from(DashboardSession)) or 0)


def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(app, admin):
    client = _signed_in(app, admin)
    thief = _replay(app, client)
    assert _opens(thief)
    client.post("/dashboard/logout", data={"csrf_token": csrf_of(client, "/dashboard/")})
    assert not _opens(client)
    assert not _opens(thief)
    assert _sessions(app) == 0


def test_sign_out_everywhere_ends_every_session_of_the_user(app, admin):
    laptop, phone = _signed_in(app, admin), _signed_in(app, admin)
    answer = laptop.post("/dashboard/logout-everywhere",
                         data={"csrf_token": csrf_of(laptop, "/dashboard/")})
    assert answer.status_code == 302
    assert not _opens(laptop)
    assert not _opens(phone)


def test_a_password_change_or_disabling_ends_every_session(app, admin):
    runner = app.test_cli_runner()
    laptop, phone = _signed_in(app, admin), _signed_in(app, admin)
    result = runner.invoke(args=["users", "set-password", admin, "--password-stdin"],
                           input="another long password\n")
    assert result.exit_code == 0, result.output
    assert not _opens(laptop)
    assert not _opens(phone)
    # The new password opens a new session; disabling the user ends it.
    client = app.test_client()
    assert sign_in(client, admin, "another long password").status_code == 302
    assert _opens(client)
    assert runner.invoke(args=["users", "disable", admin]).exit_code == 0
    assert not _opens(client)
    assert _sessions(app) == 0


def test_sign_out_of_a_user_from_the_command_line(app, admin):
    client = _signed_in(app, admin)
    result = app.test_cli_runner().invoke(args=["users", "sign-out", admin])
    assert result.exit_code == 0, result.output
    assert "1 session(s)" in result.output
    assert not _opens(client)


@pytest.mark.parametrize("column", ["last_seen_at", "created_at"])
def test_idle_and_absolute_timeouts(app, admin, column):
    app.config.update(WEB_SESSION_IDLE_SECONDS=1800, WEB_SESSION_ABSOLUTE_SECONDS=43200)
    client = _signed_in(app, admin)
    # Within both limits the session stays open (and its last use moves).
    with get_db(app).session_scope(write=True) as session:
        session.execute(update(DashboardSession).values(
            last_seen_at=clock.now() - dt.timedelta(seconds=1700),
            created_at=clock.now() - dt.timedelta(seconds=43000)))
    assert _opens(client)
    # Past the idle limit (no request for 31 minutes) or the absolute one (13 hours after
    # signing in, however busy), it is over.
    late = {"last_seen_at": dt.timedelta(minutes=31), "created_at": dt.timedelta(hours=13)}
    with get_db(app).session_scope(write=True) as session:
        session.execute(update(DashboardSession).values(
            {column: clock.now() - late[column]}))
    assert not _opens(client)
    assert _sessions(app) == 0
