"""Clients and tokens: create, list, disable, rotate; issue, find, revoke, authenticate.

Secrets: a client secret is 256 random bits, shown once and kept as a salted scrypt
hash. Tokens are opaque 256-bit random strings kept as their SHA-256 digest: a token is
looked up by digest on every request (one indexed read), so a revocation or a disabled
client stops working at once in every worker; a fast digest is enough for values that
cannot be guessed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub import clock
from hub.audit import current_actor, record
from hub.auth.models import SCOPES, ClientAssertionJti, OAuthClient, OAuthToken
from hub.db import transactional
from hub.errors import Conflict, InvalidInput, NotFound
from hub.registry.models import Administration, Programme

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1


def hash_secret(secret: str) -> str:
    """A salted scrypt hash of a client secret."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


#: A hash no secret matches (its digest is not scrypt's output for any known secret). A
#: request naming an unknown client, or a client without a secret, is checked against it,
#: so that it costs the same scrypt as a wrong secret and cannot be told apart by time.
UNMATCHABLE_HASH = (f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${'00' * 16}$" + "00" * 64)


def check_secret(stored: str | None, secret: str) -> bool:
    """Whether `secret` is exactly the secret of the `stored` hash; always one scrypt,
    whatever the input."""
    if not stored:
        stored = UNMATCHABLE_HASH
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                               p=int(p))
    # scrypt keys HMAC with the secret, and HMAC pads a short key with zero bytes: the
    # secret followed by NULs gives the same digest. No secret holds a NUL, so a candidate
    # with one is refused (after the same scrypt).
    return (hmac.compare_digest(candidate.hex(), digest) and stored != UNMATCHABLE_HASH
            and "\x00" not in secret)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def parse_scopes(scopes: str | Iterable[str]) -> list[str]:
    """Scope names from "a,b" / "a b" / a list; refuses unknown ones."""
    if isinstance(scopes, str):
        items = [s for s in scopes.replace(",", " ").split() if s]
    else:
        items = [s for s in scopes if s]
    unknown = sorted(set(items) - set(SCOPES))
    if unknown:
        raise InvalidInput(f"unknown scopes: {', '.join(unknown)} (known: {', '.join(SCOPES)})",
                           fields={"scopes": f"unknown: {', '.join(unknown)}"})
    return [s for s in SCOPES if s in items]


def validate_jwks(jwks: Mapping[str, Any]) -> dict[str, Any]:
    """Check a client's public JWK set; private keys are refused."""
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list) or not keys:
        raise InvalidInput("the JWK set must be an object with a non-empty 'keys' list",
                           fields={"jwks": "no keys"})
    for key in keys:
        if not isinstance(key, Mapping) or any(k in key for k in ("d", "p", "q", "k")):
            raise InvalidInput("the JWK set must hold public keys only",
                               fields={"jwks": "private key material"})
    try:
        KeySet.import_key_set({"keys": list(keys)})
    except (JoseError, ValueError, TypeError) as exc:
        raise InvalidInput(f"the JWK set cannot be read: {exc}",
                           fields={"jwks": "unreadable"}) from exc
    return {"keys": [dict(k) for k in keys]}


#: A client's name is for people: 1 to this many characters (the column's length).
NAME_MAX_LENGTH = 200
#: The largest `rate_limit` a client may have (quota units per window; at least 1: a
#: client of 0 would be refused on every request).
RATE_LIMIT_MAX = 10**9
#: The longest overlap a rotated secret may keep (a year and a day is already a typo).
OVERLAP_MAX_SECONDS = 366 * 86400


def check_client_fields(*, name: str, rate_limit: int | None) -> None:
    """Refuse a name or rate limit the client cannot have, every wrong field at once,
    whoever asks (the admin API's schema checks the same; the command line has only this)."""
    problems: list[str] = []
    errors: dict[str, str] = {}
    if not isinstance(name, str) or not 1 <= len(name) <= NAME_MAX_LENGTH:
        problems.append(f"name {name!r} is not 1 to {NAME_MAX_LENGTH} characters")
        errors["name"] = f"expected 1 to {NAME_MAX_LENGTH} characters"
    if rate_limit is not None and (isinstance(rate_limit, bool)
                                   or not isinstance(rate_limit, int)
                                   or not 1 <= rate_limit <= RATE_LIMIT_MAX):
        problems.append(f"rate_limit {rate_limit} is not a whole number from 1 to "
                        f"{RATE_LIMIT_MAX}")
        errors["rate_limit"] = f"expected a whole number from 1 to {RATE_LIMIT_MAX}"
    if problems:
        raise InvalidInput("; ".join(problems), fields=errors)


@dataclass
class CreatedClient:
    client: OAuthClient
    # None for a client registered with keys: it authenticates only with private_key_jwt.
    secret: str | None


@transactional
def create_client(session: Session, *, name: str, programme: str | None,
                  scopes: str | Iterable[str], jwks: Mapping[str, Any] | None = None,
                  rate_limit: int | None = None) -> CreatedClient:
    """Register a client; the returned secret is never stored or shown again.

    A client registered with a JWK set gets no secret: it authenticates only with
    private_key_jwt, so that a leaked secret can never bypass its keys."""
    check_client_fields(name=name, rate_limit=rate_limit)
    scope_list = parse_scopes(scopes)
    if not scope_list:
        raise InvalidInput("a client needs at least one scope", fields={"scopes": "empty"})
    programme_row = None
    if programme:
        programme_row = session.scalar(select(Programme).where(Programme.code == programme))
        if programme_row is None:
            raise InvalidInput(f"programme {programme} does not exist",
                               fields={"programme": "unknown"})
    elif "admin" not in scope_list:
        raise InvalidInput("a partner client acts for one programme: name it",
                           fields={"programme": "required"})
    secret = secrets.token_urlsafe(32) if jwks is None else None
    client = OAuthClient(
        client_id="aeo_" + secrets.token_hex(12),
        name=name,
        programme_id=programme_row.id if programme_row else None,
        administration_id=programme_row.administration_id if programme_row else None,
        scopes=scope_list,
        secret_hash=hash_secret(secret) if secret is not None else None,
        jwks=validate_jwks(jwks) if jwks is not None else None,
        rate_limit=rate_limit,
    )
    session.add(client)
    session.flush()
    _audit_client(session, "client.created", client, {"scopes": scope_list,
                                                      "programme": programme})
    return CreatedClient(client, secret)


def _audit_client(session: Session, action: str, client: OAuthClient,
                  details: Mapping[str, Any]) -> None:
    """An administrative change to a client, in the audit log (never its secret)."""
    administration = administration_code(session, client.administration_id)
    record(session, action, actor=current_actor(), subject=f"client:{client.client_id}",
           administrations=[administration] if administration else [],
           details={"name": client.name, **details})


def administration_code(session: Session, administration_id: int | None) -> str | None:
    """The code of a client's administration (None for a client of none)."""
    if administration_id is None:
        return None
    return session.scalar(select(Administration.code)
                          .where(Administration.id == administration_id))


def get_client(session: Session, client_id: str) -> OAuthClient:
    client = session.scalar(select(OAuthClient).where(OAuthClient.client_id == client_id))
    if client is None:
        raise NotFound(f"client {client_id} does not exist", fields={"client_id": "unknown"})
    return client


def list_clients(session: Session) -> list[OAuthClient]:
    return list(session.scalars(select(OAuthClient).order_by(OAuthClient.id)))


def revoke_client_tokens(session: Session, client: OAuthClient,
                         now: dt.datetime | None = None) -> int:
    result = session.execute(
        update(OAuthToken)
        .where(OAuthToken.client_pk == client.id, OAuthToken.revoked_at.is_(None))
        .values(revoked_at=now or clock.now())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@transactional
def disable_client(session: Session, client_id: str) -> int:
    """Disable a client and revoke its tokens; returns how many tokens were revoked."""
    client = get_client(session, client_id)
    now = clock.now()
    client.disabled_at = client.disabled_at or now
    revoked = revoke_client_tokens(session, client, now)
    session.flush()
    _audit_client(session, "client.disabled", client, {"tokens_revoked": revoked})
    return revoked


@transactional
def set_keys(session: Session, client_id: str, jwks: Mapping[str, Any]) -> OAuthClient:
    """Replace the public keys of a client that authenticates with keys. To roll a key
    over, register a set holding the old and the new key, move the partner to the new
    one, then register the new key alone. Tokens already issued are not affected."""
    client = get_client(session, client_id)
    if not client.jwks:
        raise Conflict(f"client {client_id} authenticates with a secret, not with keys",
                       fields={"client_id": "secret client"})
    client.jwks = validate_jwks(jwks)
    session.flush()
    _audit_client(session, "client.keys_replaced", client,
                  {"kids": [k.get("kid") for k in client.jwks["keys"]]})
    return client


@transactional
def enable_client(session: Session, client_id: str) -> OAuthClient:
    """Enable a disabled client again. Tokens revoked when it was disabled stay revoked:
    it asks for new ones."""
    client = get_client(session, client_id)
    if client.disabled_at is not None:
        client.disabled_at = None
        session.flush()
        _audit_client(session, "client.enabled", client, {})
    return client


@transactional
def rotate_secret(session: Session, client_id: str, *, overlap_seconds: int = 86400,
                  revoke_tokens: bool = False) -> str:
    """Give a client a new secret. The old one is still accepted for `overlap_seconds`
    (0: refused at once), so that the partner can roll its deployments over; tokens
    already issued stay valid until they expire unless `revoke_tokens` (a leaked secret:
    rotate with no overlap and revoke)."""
    client = get_client(session, client_id)
    if client.jwks:
        raise Conflict(f"client {client_id} authenticates with its keys and has no secret",
                       fields={"client_id": "key client"})
    if overlap_seconds < 0:
        raise InvalidInput("the overlap cannot be negative",
                           fields={"overlap_seconds": "negative"})
    if overlap_seconds > OVERLAP_MAX_SECONDS:
        raise InvalidInput(f"overlap_seconds {overlap_seconds} is more than "
                           f"{OVERLAP_MAX_SECONDS} (366 days)",
                           fields={"overlap_seconds": f"at most {OVERLAP_MAX_SECONDS}"})
    secret = secrets.token_urlsafe(32)
    now = clock.now()
    keep_old = overlap_seconds > 0 and client.secret_hash is not None
    client.previous_secret_hash = client.secret_hash if keep_old else None
    client.previous_secret_expires_at = (now + dt.timedelta(seconds=overlap_seconds)
                                         if keep_old else None)
    client.secret_hash = hash_secret(secret)
    client.secret_rotated_at = now
    revoked = revoke_client_tokens(session, client, now) if revoke_tokens else 0
    session.flush()
    _audit_client(session, "client.secret_rotated", client,
                  {"overlap_seconds": overlap_seconds if keep_old else 0,
                   "tokens_revoked": revoked})
    return secret


def check_client_secret(client: OAuthClient | None, secret: str,
                        now: dt.datetime | None = None) -> bool:
    """Whether `secret` is the client's secret, or its previous one within the overlap.
    Always two scrypts (the missing ones against an unmatchable hash), whatever the
    client, so that time tells nothing about it."""
    now = now or clock.now()
    current = client.secret_hash if client is not None else None
    previous = None
    if client is not None and client.previous_secret_expires_at is not None \
            and now < client.previous_secret_expires_at:
        previous = client.previous_secret_hash
    matches_current = check_secret(current, secret)
    matches_previous = check_secret(previous, secret)
    return matches_current or matches_previous


def issue_token(session: Session, client: OAuthClient, scope: str, lifetime: int
                ) -> tuple[str, OAuthToken]:
    value = secrets.token_urlsafe(32)
    now = clock.now()
    row = OAuthToken(token_hash=token_digest(value), client_pk=client.id, scope=scope,
                     issued_at=now, expires_at=now + dt.timedelta(seconds=lifetime))
    session.add(row)
    session.flush()
    return value, row


def find_token(session: Session, value: str) -> OAuthToken | None:
    return session.scalar(select(OAuthToken).where(OAuthToken.token_hash == token_digest(value)))


def remember_jti(session: Session, client: OAuthClient, jti: str, expires_at: dt.datetime
                 ) -> bool:
    """Record a client assertion's jti; False when it was used before (a replay)."""
    # Expired ids are dropped at the start of every OAuth write (hub.auth.writes).
    seen = session.scalar(select(ClientAssertionJti.id).where(
        ClientAssertionJti.client_pk == client.id, ClientAssertionJti.jti == jti))
    if seen is not None:
        return False
    session.add(ClientAssertionJti(client_pk=client.id, jti=jti, expires_at=expires_at))
    session.flush()
    return True


@dataclass(frozen=True)
class Principal:
    """Who calls the API: the facts of a token and its client that requests need."""

    client_pk: int
    client_id: str
    programme_id: int | None
    administration_id: int | None
    scopes: frozenset[str]
    is_admin: bool
    rate_limit: int | None
    expires_at: dt.datetime
