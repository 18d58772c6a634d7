"""Dashboard sessions and CSRF protection.

Flask-Login loads the signed-in user of each request; what it keeps in Flask's signed
cookie (HttpOnly, SameSite=Lax) is the token of a server-side session (`hub.web.sessions`:
idle and absolute timeouts, ended by signing out, a password change, disabling the user
or "sign out everywhere"), beside a random CSRF token. Every POST to the dashboard must
carry that token in the `csrf_token` form field (compared in constant time), including
the sign-in form, so that another site can neither act for a signed-in user nor sign a
victim into its own account.
Public pages never open a session, so they set no cookie.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Callable
from typing import Any, TypeVar, cast

import flask_login
from flask import Flask, abort, current_app, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin, login_user, logout_user
from itsdangerous import URLSafeTimedSerializer

from hub import db
from hub.web import sessions
from hub.web.models import DashboardUser

F = TypeVar("F", bound=Callable[..., Any])
CSRF_FIELD = "csrf_token"


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed cookie sessions, with the signing serializer built once per secret
    key instead of at the start of every request. Every request opens the session, API
    calls (which carry no cookie) included: building the serializer (and itsdangerous'
    trial encoding inside it) was about a twentieth of a partner's verify."""

    def __init__(self) -> None:
        self._serializers: dict[tuple[Any, ...], URLSafeTimedSerializer | None] = {}

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        key = (app.secret_key, *(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        try:
            return self._serializers[key]
        except KeyError:
            serializer = self._serializers[key] = super().get_signing_serializer(app)
            return serializer


def csrf_token() -> str:
    """The session's CSRF token (created on first use)."""
    token = session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[CSRF_FIELD] = token
    return token


def check_csrf() -> None:
    """Abort with 400 unless a POST carries the session's CSRF token."""
    if request.method != "POST":
        return
    expected = session.get(CSRF_FIELD)
    given = request.form.get(CSRF_FIELD, "")
    if not isinstance(expected, str) or not hmac.compare_digest(expected, given):
        abort(400, description="The form has expired or did not come from this site. "
                               "Reload the page and try again.")


class SignedIn(UserMixin):
    """Flask-Login's view of a session: its id is the session's token, not the user's,
    so that ending the server-side session signs the cookie out (Flask-Login's
    "alternative tokens")."""

    def __init__(self, token: str, user: DashboardUser) -> None:
        self.token = token
        self.user = user

    def get_id(self) -> str:
        return self.token


def _load(token: str) -> SignedIn | None:
    # Commits: the last use moved, or a timed-out session deleted.
    user = sessions.resume(db.session(), token,
                           sessions.Timeouts.from_config(current_app.config))
    return SignedIn(token, user) if user is not None else None


def init_app(app: Flask) -> None:
    manager = LoginManager(app)
    manager.user_loader(_load)
    # The server-side session decides; no remember-me cookie is ever set.
    manager.session_protection = None


def sign_in(user: DashboardUser) -> None:
    """Start a fresh session for `user` (a new CSRF token: no session fixation)."""
    session.clear()
    token = sessions.start(db.session(), user)
    login_user(SignedIn(token, user))
    session[CSRF_FIELD] = secrets.token_urlsafe(32)


def sign_out() -> None:
    """End this browser's session (its cookie opens nothing afterwards)."""
    signed_in = flask_login.current_user
    if isinstance(signed_in, SignedIn):
        sessions.end(db.session(), signed_in.token)
    logout_user()
    session.clear()


def sign_out_everywhere(user: DashboardUser) -> int:
    """End every session of `user`, this one included; returns how many."""
    ended = sessions.end_all(db.session(), user.id)
    logout_user()
    session.clear()
    return ended


def current_user() -> DashboardUser | None:
    signed_in = flask_login.current_user
    return signed_in.user if isinstance(signed_in, SignedIn) else None


def login_required(view: F) -> F:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        user = current_user()
        if user is None:
            return redirect(url_for("dashboard.login", next=request.path))
        g.audit_actor = f"user:{user.username}"  # who the audit log names
        return view(*args, **kwargs)

    return cast(F, wrapped)
