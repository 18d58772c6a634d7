"""Dashboard sessions and CSRF protection.

The session lives in Flask's signed cookie (HttpOnly, SameSite=Lax); it holds the user's
id and a random CSRF token. Every POST to the dashboard must carry that token in the
`csrf_token` form field (compared in constant time), including the sign-in form, so that
another site can neither act for a signed-in user nor sign a victim into its own account.
Public pages never open a session, so they set no cookie.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import Flask, abort, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer

from hub import db
from hub.web.models import DashboardUser
from hub.web.users import active_user

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


def sign_in(user: DashboardUser) -> None:
    """Start a fresh session for `user` (a new CSRF token: no session fixation)."""
    session.clear()
    session["user_id"] = user.id
    session[CSRF_FIELD] = secrets.token_urlsafe(32)


def sign_out() -> None:
    session.clear()


def current_user() -> DashboardUser | None:
    if "web_user" not in g:
        user_id = session.get("user_id")
        g.web_user = active_user(db.session(), user_id) if isinstance(user_id, int) else None
    return cast(DashboardUser | None, g.web_user)


def login_required(view: F) -> F:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            return redirect(url_for("dashboard.login", next=request.path))
        return view(*args, **kwargs)

    return cast(F, wrapped)
