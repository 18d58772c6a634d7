"""The Authlib authorization server: client credentials, client authentication, endpoints.

- Grant: client credentials only. A requested scope the client does not hold is refused
  with `invalid_scope` (Authlib's default would narrow it silently); no scope asks for all
  of the client's scopes.
- Client authentication (`authenticate_client`, one function for every endpoint): a client
  registered with keys authenticates only with `private_key_jwt` (RFC 7523) against its
  JWK set, any other client only with its secret (`client_secret_basic` or
  `client_secret_post`). A request carrying two methods is `invalid_request` (RFC 6749
  section 2.3). Every failure is the same `invalid_client` answer, and an unknown client
  or a client without a secret costs the same scrypts as a wrong secret. After a rotation
  the previous secret is accepted too, until its overlap ends. A client
  assertion's `jti` is remembered until it expires and a replay is refused; an assertion
  may expire at most `MAX_ASSERTION_SECONDS` ahead. A `client_id` in the form must name
  the authenticated client (RFC 7521 4.2).
- Requests (`refuse_malformed`, before Authlib reads them): parameters only in the form
  body, each at most once, none with a NUL character (RFC 6749 3.2); anything else is
  `invalid_request` naming the parameters.
- Tokens: opaque, 256 random bits, stored as SHA-256 digests (`hub.auth.service`).
- Introspection (RFC 7662): a client may introspect its own tokens, an `admin` client any.
  Revocation (RFC 7009): a client revokes its own tokens.
- Errors: problem documents that also carry the OAuth `error` and `error_description`
  members, so that standard OAuth clients read them; every error has a description, and
  no description echoes a caller's text outside RFC 6749's error alphabet.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Any

from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import ClientCredentialsGrant, InvalidScopeError
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError, OAuth2Error
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from flask import Flask, Request, Response, current_app, g, json
from flask import request as flask_request
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from hub import clock, db, metrics
from hub.audit import record
from hub.auth import service, throttle, writes
from hub.auth.models import SCOPES, OAuthClient, OAuthToken
from hub.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE
from hub.logs import current_request_id

log = logging.getLogger(__name__)

#: The error codes of RFC 6749 (5.2) and RFC 7009 (2.2.1) a client may receive.
OAUTH_ERRORS = frozenset({"invalid_request", "invalid_client", "invalid_grant",
                          "unauthorized_client", "unsupported_grant_type", "invalid_scope",
                          "unsupported_token_type", "temporarily_unavailable"})
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]
SIGNING_ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                "ES512", "EdDSA"]
#: The description of an error raised without one (Authlib raises most of its own bare).
DEFAULT_DESCRIPTIONS = {
    "invalid_request": "the request is malformed or lacks a required parameter",
    "invalid_client": "client authentication failed",
    "invalid_grant": "the token was not issued to this client",
    "unauthorized_client": "the client may not use this grant type",
    "unsupported_grant_type": "grant_type must be client_credentials",
    "invalid_scope": "the request asks for a scope the client may not ask for",
    "unsupported_token_type": "token_type_hint must be access_token or refresh_token",
    "temporarily_unavailable": "the hub cannot answer now; retry later",
}
#: How far ahead a client assertion may expire (RFC 7523 3 lets the server limit it): its
#: jti is kept until then, so a longer lifetime only costs storage and widens a leak.
MAX_ASSERTION_SECONDS = 3600


class ClientAdapter:
    """An `OAuthClient` row as Authlib's ClientMixin sees it."""

    def __init__(self, row: OAuthClient) -> None:
        self.row = row
        self.client_id = row.client_id

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_response_type(self, response_type: str) -> bool:
        return False

    def get_allowed_scope(self, scope: str | None) -> str:
        held = list(self.row.scopes or [])
        if not scope:
            return " ".join(held)
        return " ".join(s for s in scope.split() if s in held)

    def check_client_secret(self, client_secret: str) -> bool:
        return service.check_client_secret(self.row, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # A client with keys uses them and nothing else, even if an old row kept a secret.
        if method == "private_key_jwt":
            return bool(self.row.jwks)
        if method in ("client_secret_basic", "client_secret_post"):
            return not self.row.jwks and self.row.secret_hash is not None
        return False

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "client_credentials"


class TokenAdapter:
    """An `OAuthToken` row as Authlib's TokenMixin sees it."""

    def __init__(self, row: OAuthToken) -> None:
        self.row = row

    def check_client(self, client: ClientAdapter) -> bool:
        return self.row.client_pk == client.row.id

    def get_scope(self) -> str:
        return self.row.scope

    def get_expires_in(self) -> int:
        return int((self.row.expires_at - self.row.issued_at).total_seconds())

    def is_expired(self) -> bool:
        return self.row.expires_at <= clock.now()

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None or self.row.client.disabled_at is not None


def query_client(client_id: str) -> ClientAdapter | None:
    row = db.session().scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))
    if row is None or row.disabled_at is not None:
        return None
    return ClientAdapter(row)


#: The issuer of a hub whose configuration names none (never in production): the address
#: `aeohub serve` listens on by default. `serve` and `demo` put their own address instead.
LOCAL_ISSUER = "http://127.0.0.1:5000"


def issuer() -> str:
    """The hub's issuer identifier (`ISSUER`): the base of every URL the authorization
    server publishes. It comes from configuration only, never from the request's Host
    header, which any caller can choose."""
    return str(current_app.config.get("ISSUER") or LOCAL_ISSUER).rstrip("/")


def token_endpoint() -> str:
    return issuer() + "/oauth/token"


#: The one answer to a failed client authentication, whatever failed (unknown client, wrong
#: secret, a method the client may not use, a bad assertion): nothing to tell them apart.
CLIENT_AUTH_FAILED = "client authentication failed"
FAILED_KEY = "aeohub_oauth_auth_failed"
_LIMIT_NAMES = {"oauth_address": "address", "oauth_client": "client_address"}
ASSERTION_FIELDS = ("client_assertion", "client_assertion_type")


def printable(text: str) -> bool:
    """Whether `text` keeps to RFC 6749's alphabet of error descriptions (printable ASCII
    without `"` and `\\`): only such caller text is echoed in an error, which Authlib
    refuses to build otherwise."""
    return all(0x20 <= ord(c) <= 0x7E and c not in '"\\' for c in text)


def _names(names: Any) -> str:
    return ", ".join(sorted({name if printable(name) and len(name) <= 40
                             else "(unprintable name)" for name in names}))


def basic_credentials(headers: Any) -> tuple[str | None, str | None]:
    """The client id and secret of an HTTP Basic Authorization header; (None, None) for
    none or one that is not base64 of UTF-8 text (`refuse_malformed` answers that)."""
    try:
        client_id, secret = extract_basic_authorization(headers)
    except UnicodeDecodeError:
        return None, None
    return client_id, secret


def refuse_malformed(request: Request) -> None:
    """Refuse, as `invalid_request`, what RFC 6749 3.2 does not allow in a token (or
    introspection, or revocation) request and Authlib would take silently: parameters in
    the URL query (Authlib merges them, the query winning), a parameter given more than
    once (Authlib takes the first), a NUL character in a parameter or in HTTP Basic
    credentials (a secret followed by NULs would hash like the secret)."""
    if request.args:
        raise InvalidRequestError(
            description="parameters must be sent in the form body, not in the URL query: "
            + _names(request.args.keys()))
    repeated = [name for name in request.form if len(request.form.getlist(name)) > 1]
    if repeated:
        raise InvalidRequestError(
            description="parameters must not be given more than once: " + _names(repeated))
    with_nul = [name for name, value in request.form.items(multi=True)
                if "\x00" in name or "\x00" in value]
    try:
        basic = extract_basic_authorization(request.headers)
    except UnicodeDecodeError as exc:
        raise InvalidRequestError(
            description="the Authorization header's credentials are not UTF-8 text") from exc
    with_nul += [f"{name} (Authorization header)"
                 for name, value in zip(("client_id", "client_secret"), basic, strict=True)
                 if value and "\x00" in value]
    if with_nul:
        raise InvalidRequestError(
            description="parameters must not contain NUL characters: " + _names(with_nul))


def presented_methods(request: Any) -> list[str]:
    """The client authentication methods a token, introspection or revocation request
    carries (credentials in the Authorization header, in the form, or an assertion)."""
    form = request.form
    methods = []
    if request.headers.get("Authorization"):
        methods.append("client_secret_basic")
    if "client_secret" in form:
        methods.append("client_secret_post")
    if any(name in form for name in ASSERTION_FIELDS):
        methods.append("private_key_jwt")
    return methods


def _auth_failed(cause: str) -> InvalidClientError:
    log.info("client authentication failed: %s", cause)
    g.setdefault(FAILED_KEY, True)
    return InvalidClientError(status_code=401, description=CLIENT_AUTH_FAILED)


def authenticate_client(request: Any, assertion: PrivateKeyJWT) -> ClientAdapter:
    """The client of a request, authenticated by the one method it presents."""
    methods = presented_methods(request)
    if len(methods) > 1:
        raise InvalidRequestError(
            description="the request uses more than one client authentication method: "
            + ", ".join(methods))
    if not methods:
        raise _auth_failed("no credentials")
    method = methods[0]
    if method == "private_key_jwt":
        try:
            client: ClientAdapter | None = assertion(query_client, request)
        except OAuth2Error as exc:
            raise _auth_failed(f"assertion: {exc.description}") from exc
    else:
        if method == "client_secret_basic":
            client_id, secret = basic_credentials(request.headers)
        else:
            client_id, secret = request.form.get("client_id"), request.form.get("client_secret")
        client = query_client(client_id) if isinstance(client_id, str) and client_id else None
        usable = client is not None and client.check_endpoint_auth_method(method, "token")
        # The same scrypts whether or not the client exists or may use a secret.
        matches = service.check_client_secret(client.row if usable and client else None,
                                              secret or "")
        if not matches:
            client = None
    if client is None or not client.check_endpoint_auth_method(method, "token"):
        raise _auth_failed(f"{method} refused")
    # RFC 7521 4.2: a client_id beside HTTP Basic or an assertion names the same client.
    named = request.form.get("client_id")
    if named is not None and named != client.client_id:
        raise _auth_failed(f"{method}: client_id names another client")
    request.auth_method = method
    return client


class HubClientCredentialsGrant(ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_requested_scope(self) -> None:
        requested = set((self.request.payload.scope or "").split())
        held = set(self.request.client.row.scopes or [])
        refused = requested - held
        if refused:
            # A scope token is printable ASCII without `"` and `\\` (RFC 6749 3.3): only
            # such names are echoed, the others are counted.
            shown = sorted(s for s in refused if printable(s) and len(s) <= 40)
            hidden = len(refused) - len(shown)
            if hidden:
                shown.append(f"{hidden} invalid scope name{'s' if hidden > 1 else ''}")
            raise InvalidScopeError(
                description="the request asks for scopes the client may not ask for: "
                + ", ".join(shown))


class PrivateKeyJWT(JWTBearerClientAssertion):
    """`private_key_jwt`: an assertion signed by a key of the client's registered JWK set."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def get_audiences(self) -> list[str]:
        # RFC 7523 3: the token endpoint's URL, for the hub's every endpoint.
        return [token_endpoint()]

    def validate_jti(self, claims: Any, jti: Any) -> bool:
        # Called after the claims' checks: `exp` is a finite number and not past.
        latest = clock.now().timestamp() + MAX_ASSERTION_SECONDS + self.leeway
        if claims["exp"] > latest:
            raise InvalidClientError(description="the assertion expires more than "
                                                 f"{MAX_ASSERTION_SECONDS} s ahead")
        client = query_client(str(claims["sub"]))
        if client is None or not isinstance(jti, str) or len(jti) > 255:
            return False
        expires = dt.datetime.fromtimestamp(int(claims["exp"]), dt.UTC) + dt.timedelta(
            seconds=self.leeway)
        return service.remember_jti(db.session(), client.row, jti, expires)

    def resolve_client_public_key(self, client: ClientAdapter) -> Any:
        if not client.row.jwks:
            raise InvalidClientError(description="the client has no registered keys")
        return KeySet.import_key_set(client.row.jwks)  # type: ignore[arg-type]


class UnsupportedTokenType(OAuth2Error):
    """RFC 7009 2.2.1's `unsupported_token_type`, a 400 (Authlib's is a 401 without
    WWW-Authenticate)."""

    error = "unsupported_token_type"


def _require_token(request: Any) -> None:
    if "token" not in request.form:
        raise InvalidRequestError(description="the request has no token parameter")


class HubIntrospectionEndpoint(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def check_params(self, request: Any, client: ClientAdapter) -> None:
        # RFC 7662 2.1: an unknown token_type_hint may be ignored; the hub has one type.
        _require_token(request)

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenAdapter | None:
        row = service.find_token(db.session(), token_string)
        return TokenAdapter(row) if row is not None else None

    def check_permission(self, token: TokenAdapter, client: ClientAdapter, request: Any
                         ) -> bool:
        return token.check_client(client) or client.row.is_admin

    def introspect_token(self, token: TokenAdapter) -> dict[str, Any]:
        row = token.row
        client = row.client
        return {
            "active": True,
            "client_id": client.client_id,
            "token_type": "Bearer",
            "scope": row.scope,
            "exp": int(row.expires_at.timestamp()),
            "iat": int(row.issued_at.timestamp()),
            "iss": issuer(),
            "sub": client.client_id,
            "programme": client.programme.code if client.programme else None,
        }


class HubRevocationEndpoint(RevocationEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def check_params(self, request: Any, client: ClientAdapter) -> None:
        _require_token(request)
        hint = request.form.get("token_type_hint")
        if hint and hint not in self.SUPPORTED_TOKEN_TYPES:
            raise UnsupportedTokenType(description=DEFAULT_DESCRIPTIONS[
                "unsupported_token_type"])

    def query_token(self, token_string: str, token_type_hint: str | None) -> TokenAdapter | None:
        row = service.find_token(db.session(), token_string)
        return TokenAdapter(row) if row is not None else None

    def revoke_token(self, token: TokenAdapter, request: Any) -> None:
        already = token.row.revoked_at is not None
        token.row.revoked_at = token.row.revoked_at or clock.now()
        if not already:
            _audit_token(db.session(), "token.revoked", token.row)


class HubAuthorizationServer(AuthorizationServer):
    """Authlib's Flask server, with hashed opaque tokens and problem+json errors."""

    assertion = PrivateKeyJWT()

    def authenticate_client(self, request: Any, methods: Any, endpoint: str = "token"
                            ) -> ClientAdapter:
        return authenticate_client(request, self.assertion)

    def save_token(self, token: dict[str, Any], request: Any) -> None:
        # The token was stored by the generator; commit it with the rest of the request
        # and its audit entry (which names the token by its row id, never its value).
        session = db.session()
        row = service.find_token(session, token["access_token"])
        if row is not None:
            _audit_token(session, "token.issued", row)
        session.commit()

    def answer(self, endpoint: str | None) -> Response:
        """The response of the token endpoint (None) or of a named endpoint. Whatever
        Authlib raises on the way, `InsecureTransportError` (plain http from a host that
        is not loopback) included, is an RFC 6749 error answer, never a 500."""
        wait = float(current_app.config.get("OAUTH_WRITE_WAIT_SECONDS", 5))
        limits = throttle.Limits.from_config(current_app.config)
        caller = throttle.Caller.of(str(current_app.config["SECRET_KEY"]),
                                    flask_request.remote_addr or "unknown",
                                    self.presented_client_id())
        g.pop(FAILED_KEY, None)
        try:
            refuse_malformed(flask_request)
            writes.begin_bounded(db.session(), wait)
            throttled = throttle.refused(db.session(), limits, caller)
            if throttled is not None:
                limit, retry = throttled
                metrics.count_oauth_throttled(_LIMIT_NAMES[limit])
                return self.handle_response(
                    429, {"error": "temporarily_unavailable",
                          "error_description": "too many failed client authentications "
                                               f"from this address; retry in {retry} s"},
                    [("Retry-After", str(retry))])
            if endpoint is None:
                response: Response = self.create_token_response()
            else:
                response = self.create_endpoint_response(endpoint)
        except OperationalError as exc:
            # The database's locks were not ours within the wait (a sync holds them), or
            # the database is unreachable: nothing was written; the client tries again.
            db.session().rollback()
            log.warning("OAuth %s unavailable: %s", endpoint or "token",
                        str(exc.orig).splitlines()[0] if exc.orig else exc)
            retry = max(1, math.ceil(wait))
            return self.handle_response(
                503, {"error": "temporarily_unavailable",
                      "error_description": "the hub is busy; nothing was changed, retry in "
                                           f"{retry} s"},
                [("Retry-After", str(retry))])
        except AuthlibBaseError as exc:
            status = getattr(exc, "status_code", 400)
            description = exc.description or str(exc.error)
            return self.handle_response(
                status if 400 <= status < 500 else 400,
                {"error": exc.error, "error_description": description}, [])
        if g.pop(FAILED_KEY, False):
            self.count_failure(limits, caller, wait)
        return response

    def presented_client_id(self) -> str | None:
        """The client id a request names (unverified: a throttling key only)."""
        client_id, _secret = basic_credentials(flask_request.headers)
        client_id = client_id or flask_request.form.get("client_id")
        assertion = flask_request.form.get("client_assertion")
        if not client_id and assertion:
            try:
                _headers, claims = self.assertion.extract_assertion(assertion)
            except (OAuth2Error, ValueError, TypeError):
                return None
            client_id = claims.get("sub") if isinstance(claims, dict) else None
        return client_id[:200] if isinstance(client_id, str) and client_id else None

    def count_failure(self, limits: throttle.Limits, caller: throttle.Caller,
                      wait: float) -> None:
        """Count a failed client authentication (the request's work was rolled back),
        with the audit entry of a limit it reaches."""
        metrics.count_oauth_failure()
        session = db.session()
        try:
            writes.begin_bounded(session, wait)
            for bucket in throttle.count_failure(session, limits, caller):
                record(session, "oauth.throttled", actor="address:" + caller.address_key[:16],
                       subject=f"client:{caller.client_id}" if bucket == throttle.CLIENT_BUCKET
                       else None,
                       details={"limit": _LIMIT_NAMES[bucket], "client_id": caller.client_id,
                                "window_seconds": limits.window_seconds})
            session.commit()
        except OperationalError as exc:
            session.rollback()
            log.warning("a failed client authentication was not counted: %s", exc.orig)

    def handle_response(self, status_code: int, payload: Any, headers: Any) -> Response:
        if status_code >= 400:
            body = dict(payload) if not isinstance(payload, str) else json.loads(payload)
            error = str(body.get("error", "invalid_request"))
            if error not in OAUTH_ERRORS:
                # Authlib's own codes (insecure_transport, ...) are not RFC 6749's: a
                # standard client understands only those.
                error = "invalid_request"
            description = str(body.get("error_description") or DEFAULT_DESCRIPTIONS[error])
            problem = {
                "type": PROBLEM_BASE + "oauth-" + error.replace("_", "-"),
                "title": error.replace("_", " ").capitalize(),
                "status": status_code,
                "detail": description,
                "error": error,
                "error_description": description,
            }

            if current_request_id():  # as in every other error body (`hub.errors`)
                problem["request_id"] = current_request_id()
            db.session().rollback()
            response = Response(json.dumps(problem), status=status_code,
                                mimetype=PROBLEM_MEDIA_TYPE)
            for name, value in headers or []:
                if name.lower() != "content-type":
                    response.headers[name] = value
            return response
        if status_code == 200:
            db.session().commit()  # a revocation, or a spent jti on introspection
        answer: Response = super().handle_response(status_code, payload, headers)
        return answer


def _audit_token(session: Any, action: str, row: Any) -> None:
    client = row.client
    administration = service.administration_code(session, client.administration_id)
    record(session, action, actor=f"client:{client.client_id}", subject=f"token:{row.id}",
           administrations=[administration] if administration else [],
           details={"client_id": client.client_id, "scope": row.scope,
                    "expires_at": row.expires_at})


def _generate_token(grant_type: str,
                    client: ClientAdapter, user: Any = None,
                    scope: str | None = None, expires_in: int | None = None,
                    include_refresh_token: bool = True) -> dict[str, Any]:
    lifetime = int(current_app.config.get("TOKEN_LIFETIME_SECONDS", 900))
    granted = scope or " ".join(client.row.scopes or [])
    value, _row = service.issue_token(db.session(), client.row, granted, lifetime)
    return {"token_type": "Bearer", "access_token": value, "expires_in": lifetime,
            "scope": granted}


def create_server(app: Flask) -> HubAuthorizationServer:
    # Authlib logs issued tokens at DEBUG: keep its loggers above that, whatever the level.
    logging.getLogger("authlib").setLevel(max(logging.INFO, logging.getLogger().level))
    server = HubAuthorizationServer()
    server.init_app(app, query_client=query_client)
    server.register_token_generator("default", _generate_token)
    server.register_grant(HubClientCredentialsGrant)
    server.register_endpoint(HubIntrospectionEndpoint)
    server.register_endpoint(HubRevocationEndpoint)
    return server


def server_metadata() -> dict[str, Any]:
    """RFC 8414 metadata of the hub's authorization server."""
    base = issuer()
    return {
        "issuer": base,
        "token_endpoint": token_endpoint(),
        "introspection_endpoint": base + "/oauth/introspect",
        "revocation_endpoint": base + "/oauth/revoke",
        "jwks_uri": base + "/.well-known/jwks.json",
        "scopes_supported": list(SCOPES),
        "response_types_supported": [],
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "introspection_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_signing_alg_values_supported": SIGNING_ALGS,
        "service_documentation": base + "/docs",
    }
