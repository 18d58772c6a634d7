"""Protecting API routes: bearer token, rate limit, scope, in that order.

`require_scope("verify")` authenticates the request's bearer token (one indexed read, so
revocation is immediate in every worker), counts it against the client's rate limit and
checks the scope; the principal is then `current_principal()`. Failures are problem
documents: 401 with `WWW-Authenticate: Bearer error="invalid_token"`, 403 for a missing
scope, 429 with `Retry-After`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import current_app, g, request

from hub import db
from hub.auth.service import Principal, authenticate_bearer
from hub.errors import Forbidden, HubError, TooManyRequests

F = TypeVar("F", bound=Callable[..., Any])
LIMITER_KEY = "aeohub.ratelimit"


class Unauthorized(HubError):
    status = 401
    type_slug = "unauthorized"
    title = "Unauthorized"


def _bearer_value() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def authenticate() -> Principal:
    """The principal of the request's token, rate-limited; raises 401/429."""
    principal: Principal | None = g.get("principal")
    if principal is not None:
        return principal
    value = _bearer_value()
    if value is None:
        raise Unauthorized("this endpoint needs a bearer token (POST /oauth/token)",
                           headers={"WWW-Authenticate": 'Bearer realm="aeohub"'})
    principal = authenticate_bearer(db.session(), value)
    if principal is None:
        raise Unauthorized(
            "the access token is unknown, expired or revoked",
            headers={"WWW-Authenticate": 'Bearer realm="aeohub", error="invalid_token"'})
    limiter = current_app.extensions.get(LIMITER_KEY)
    if limiter is not None:
        wait = limiter.hit(principal.client_pk, principal.rate_limit)
        if wait is not None:
            raise TooManyRequests(
                f"the client's rate limit is reached; retry in {wait} s",
                headers={"Retry-After": str(wait)}, extra={"retry_after": wait})
    g.principal = principal
    return principal


def check_scope(principal: Principal, scope: str) -> None:
    if scope not in principal.scopes and "admin" not in principal.scopes:
        raise Forbidden(
            f"the token does not carry the scope {scope!r}",
            headers={"WWW-Authenticate":
                     f'Bearer realm="aeohub", error="insufficient_scope", scope="{scope}"'},
            extra={"required_scope": scope})


def require_scope(scope: str) -> Callable[[F], F]:
    """Decorator: the route needs a valid token holding `scope` (or `admin`)."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            check_scope(authenticate(), scope)
            return view(*args, **kwargs)

        wrapped.required_scope = scope  # type: ignore[attr-defined]
        return cast(F, wrapped)

    return decorator


def current_principal() -> Principal:
    principal: Principal | None = g.get("principal")
    if principal is None:  # pragma: no cover - routes are always decorated
        raise Unauthorized("not authenticated")
    return principal
