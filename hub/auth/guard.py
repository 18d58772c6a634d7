"""Protecting API routes: bearer token, rate limit, scope, in that order.

`require_scope("verify")` authenticates the request's bearer token (one indexed read, so
revocation is immediate in every worker), counts it against the client's rate limit and
checks the scope; the principal is then `current_principal()`. The read is a statement
built once (bound by digest), so the hot path pays no statement construction or cache
key per request, and runs on the driver's cursor (`hub.db.DriverQuery`). `principal_of`
is the one place that decides whether a bearer token is active.
The same statement reads the reference data's version (`hub.versions.reference_stamp`), which
the policy and the recognition caches check on every request: one round trip for both.
A view that knows its own first read authenticates itself (`require_scope(...,
in_view=True)` and `authenticate_reading`): the token's statement then runs that read too
(verify: the trader's operators), and the request is still refused, whatever its body,
unless its token is active, holds the scope and is within its rate limit.
Failures are problem documents: 401 with `WWW-Authenticate: Bearer error="invalid_token"`,
403 for a missing scope, 429 with `Retry-After`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

import orjson
from flask import current_app, g, request
from sqlalchemy import Text, bindparam, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from hub import clock, db, versions
from hub.auth.models import OAuthClient, OAuthToken
from hub.auth.service import Principal, token_digest
from hub.errors import Forbidden, HubError, InvalidInput, TooManyRequests

F = TypeVar("F", bound=Callable[..., Any])
LIMITER_KEY = "aeohub.ratelimit"
#: `g` attribute: the client's quota after this request (`hub.auth.ratelimit.Quota`).
QUOTA_KEY = "aeohub_quota"

_TOKEN_QUERY = (
    select(OAuthToken.scope, OAuthToken.expires_at, OAuthToken.revoked_at, OAuthClient.id,
           OAuthClient.client_id, OAuthClient.programme_id, OAuthClient.administration_id,
           # as its JSON text: psycopg sets up a JSON loader per result, which costs a
           # hot request more than decoding the short list here
           sql_cast(OAuthClient.scopes, Text).label("scopes"), OAuthClient.disabled_at,
           OAuthClient.rate_limit,
           versions.REFERENCE_STAMP.with_only_columns(versions.VersionCounter.version)
           .scalar_subquery().label("reference_version"),
           versions.REFERENCE_STAMP.with_only_columns(versions.VersionCounter.updated_at)
           .scalar_subquery().label("reference_moved_at"))
    .join(OAuthClient, OAuthClient.id == OAuthToken.client_pk)
    .where(OAuthToken.token_hash == bindparam("digest"))
)


_TOKEN_READ = db.DriverQuery(_TOKEN_QUERY)


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


def principal_of(session: Session, value: str) -> Principal | None:
    """The principal of an active token (None: unknown, expired, revoked, client disabled)."""
    rows = _TOKEN_READ.rows(session, {"digest": token_digest(value)})
    return _principal(session, rows[0]) if rows else None


def _principal(session: Session, row: Any) -> Principal | None:
    """The principal of a row of `_TOKEN_QUERY` if its token is active."""
    (scope, expires_at, revoked_at, pk, client_id, programme_id, admin_id, client_scopes,
     disabled_at, rate_limit, reference_version, reference_moved_at) = row
    versions.remember_reference_stamp(session, None if reference_version is None
                                   else (int(reference_version), reference_moved_at))
    if revoked_at is not None or disabled_at is not None or expires_at <= clock.now():
        return None
    # A scope taken from the client since the token was issued is no longer granted.
    granted = frozenset(scope.split()) & frozenset(orjson.loads(client_scopes or "[]"))
    return Principal(pk, client_id, programme_id, admin_id, granted, "admin" in granted,
                     rate_limit, expires_at)


def authenticate() -> Principal:
    """The principal of the request's token, rate-limited; raises 401/429."""
    principal: Principal | None = g.get("principal")
    if principal is not None:
        return principal
    return _admit(principal_of(db.reader(), _bearer_or_401()))


def authenticate_reading(read: db.DriverQuery | None, params: dict[str, Any]) -> list[Any]:
    """`authenticate()` in a view of `require_scope(..., in_view=True)`, the token's
    statement also running `read` (`hub.db.JoinedQuery`: one round trip for both), with
    the view's scope checked: the rows of `read` (none without one), for an admitted
    request only."""
    session = db.reader()
    principal: Principal | None = g.get("principal")
    if read is None:
        principal = authenticate()
        rows = []
    elif principal is not None:
        rows = read.rows(session, params)
    else:
        joined = _JOINED.get(read)
        if joined is None:
            joined = _JOINED[read] = db.JoinedQuery(_TOKEN_READ, read)
        token_row, rows = joined.rows(session, {**params,
                                                "digest": token_digest(_bearer_or_401())})
        principal = _admit(None if token_row is None else _principal(session, token_row))
    check_scope(principal, g.aeohub_required_scope)
    return rows


#: `authenticate_reading`'s statements, by the read they join to the token's.
_JOINED: dict[db.DriverQuery, db.JoinedQuery] = {}


def _bearer_or_401() -> str:
    value = _bearer_value()
    if value is None:
        raise Unauthorized("this endpoint needs a bearer token (POST /oauth/token)",
                           headers={"WWW-Authenticate": 'Bearer realm="aeohub"'})
    return value


def _admit(principal: Principal | None) -> Principal:
    """The request's principal, once its token is active and its rate limit allows."""
    g.aeohub_authenticating = True
    if principal is None:
        raise Unauthorized(
            "the access token is unknown, expired or revoked",
            headers={"WWW-Authenticate": 'Bearer realm="aeohub", error="invalid_token"'})
    _spend(principal, int(current_app.config.get("RATE_LIMIT_REQUEST_COST", 1)))
    g.principal = principal
    g.audit_actor = f"client:{principal.client_id}"  # who the audit log names
    return principal


def _spend(principal: Principal, cost: int) -> None:
    """Spend `cost` quota units of the client (429 when it lacks them); the quota is kept
    for the answer's RateLimit header fields (`QUOTA_KEY`)."""
    limiter = current_app.extensions.get(LIMITER_KEY)
    if limiter is None:
        return
    quota = limiter.hit(principal.client_pk, principal.rate_limit, cost=cost)
    setattr(g, QUOTA_KEY, quota)
    if not quota.allowed:
        wait = quota.reset
        raise TooManyRequests(
            f"the client's rate limit is reached; retry in {wait} s",
            headers={"Retry-After": str(wait)}, extra={"retry_after": wait})


def charge(units: int, *, field: str, per_item: int) -> None:
    """Spend `units` more of the caller's quota for what its request turned out to cost
    (a batch: its items). A request costing more than the client's whole quota per window
    can never pass: 400 naming `field` and the most items (`per_item` units each) allowed.
    """
    principal = current_principal()
    limiter = current_app.extensions.get(LIMITER_KEY)
    if limiter is None or units <= 0:
        return
    limit = limiter.limit_of(principal.rate_limit)
    base = int(current_app.config.get("RATE_LIMIT_REQUEST_COST", 1))
    if units + base > limit:
        largest = max(0, limit // max(1, per_item))
        raise InvalidInput(
            f"the request costs {units + base} quota units, more than the client's "
            f"{limit} per {limiter.window_seconds} s: send at most {largest} items",
            fields={field: f"at most {largest} items for this client"},
            extra={"max_items": largest})
    _spend(principal, units)


def check_scope(principal: Principal, scope: str) -> None:
    if scope not in principal.scopes and "admin" not in principal.scopes:
        raise Forbidden(
            f"the token does not carry the scope {scope!r}",
            headers={"WWW-Authenticate":
                     f'Bearer realm="aeohub", error="insufficient_scope", scope="{scope}"'},
            extra={"required_scope": scope})


def require_scope(scope: str, *, in_view: bool = False) -> Callable[[F], F]:
    """Decorator: the route needs a valid token holding `scope` (or `admin`).

    `in_view=True`: the view authenticates itself through `authenticate_reading`, once it
    knows what it will read (verify: the token and the trader's operators in one round
    trip). A view that ends without having authenticated is an error, never an answer;
    one that fails before it does (a malformed body, say) is authenticated first, so a
    caller without a valid token gets 401, as from any other route, and learns nothing
    about its request.
    """

    def decorator(view: F) -> F:
        if not in_view:
            @functools.wraps(view)
            def wrapped(*args: Any, **kwargs: Any) -> Any:
                check_scope(authenticate(), scope)
                return view(*args, **kwargs)
        else:
            @functools.wraps(view)
            def wrapped(*args: Any, **kwargs: Any) -> Any:
                g.aeohub_required_scope = scope
                try:
                    answer = view(*args, **kwargs)
                except Exception:
                    if not g.get("aeohub_authenticating"):
                        check_scope(authenticate(), scope)
                    raise
                if g.get("principal") is None:
                    raise RuntimeError(f"{view.__name__} answered without authenticating")
                return answer

        wrapped.required_scope = scope  # type: ignore[attr-defined]
        return cast(F, wrapped)

    return decorator


def current_principal() -> Principal:
    principal: Principal | None = g.get("principal")
    if principal is None:  # pragma: no cover - routes are always decorated
        raise Unauthorized("not authenticated")
    return principal
