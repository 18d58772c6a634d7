"""Dashboard users: create, authenticate, list, disable and enable, change a password.

User names are matched whatever their case. Passwords follow one rule
(`password_problem`) and are hashed with werkzeug's scrypt; a failed sign-in takes the
same time whether the user exists or not (a dummy hash is checked), so user names cannot
be probed. Every sign-in attempt is audited (`user.login`, `user.login_failed`), and so
is every change to an account (`user.created`, `user.disabled`, `user.enabled`,
`user.password_changed`). The functions that write are transactions of their own
(`hub.db.transactional`).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from hub import clock
from hub.audit import record
from hub.audit.actors import current_actor
from hub.db import transactional
from hub.errors import Conflict, InvalidInput, NotFound
from hub.registry.models import Administration
from hub.web import sessions
from hub.web.models import DashboardUser

PASSWORD_METHOD = "scrypt"  # noqa: S105 - the hashing method, not a password
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
#: fewer different characters than this is a pattern, not a password ("aaaa...", "abab...")
MIN_DISTINCT_CHARACTERS = 4
_DUMMY_HASH = generate_password_hash("not a real password", method=PASSWORD_METHOD)


def password_problem(password: str, username: str) -> str | None:
    """What is wrong with `password` for `username`, or None: the one password rule, for
    new users and new passwords alike. Length is what makes a password strong (NIST SP
    800-63B), so there is no rule on character classes; a repeated pattern or one
    containing the user's own name is refused."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"at most {MAX_PASSWORD_LENGTH} characters"
    if len(set(password)) < MIN_DISTINCT_CHARACTERS:
        return f"at least {MIN_DISTINCT_CHARACTERS} different characters"
    if "\x00" in password:
        return "must not contain NUL characters"
    if len(username) >= 3 and username.casefold() in password.casefold():
        return "must not contain the user name"
    return None


def _possible_name(username: str) -> bool:
    """Whether a user could have this (stripped) name: 1 to 120 printable characters
    without spaces (NUL, which PostgreSQL's text cannot hold, is not printable)."""
    return (0 < len(username) <= 120 and username.isprintable()
            and not any(c.isspace() for c in username))


def _named(session: Session, username: str) -> DashboardUser | None:
    """The user of this name, whatever its case: `Eu-Staff` and `eu-staff` are one user
    (the database lowers both sides, so the comparison follows one rule). A name no user
    can have is not looked up."""
    username = username.strip()
    if not _possible_name(username):
        return None
    return session.scalar(select(DashboardUser).where(
        func.lower(DashboardUser.username) == func.lower(username)))


@transactional
def create_user(session: Session, username: str, password: str, *,
                administration: str | None = None, hub_admin: bool = False) -> DashboardUser:
    """Create a user for one administration's staff, or a hub administrator."""
    fields: dict[str, str] = {}
    username = username.strip()
    if not _possible_name(username):
        fields["username"] = "1 to 120 printable characters without spaces"
    problem = password_problem(password, username)
    if problem:
        fields["password"] = problem
    if bool(administration) == hub_admin:
        fields["role"] = "give either an administration or hub administrator, not both"
    admin_row = None
    if administration:
        admin_row = session.scalar(select(Administration).where(
            Administration.code == administration.strip().upper()))
        if admin_row is None:
            fields["administration"] = f"no administration {administration!r}"
    if fields:
        raise InvalidInput("the user cannot be created", fields=fields)
    if _named(session, username) is not None:
        raise Conflict(f"a user {username!r} already exists", fields={"username": "taken"})
    user = DashboardUser(
        username=username,
        password_hash=generate_password_hash(password, method=PASSWORD_METHOD),
        administration_id=admin_row.id if admin_row else None,
        hub_admin=hub_admin,
    )
    session.add(user)
    session.flush()
    _audit(session, "user.created", user, {"hub_admin": hub_admin})
    return user


def _audit(session: Session, action: str, user: DashboardUser,
           details: dict[str, object] | None = None) -> None:
    """A change to an account, in the audit log, concerning the user's administration
    (never the password or its hash)."""
    code = user.administration.code if user.administration is not None else None
    record(session, action, actor=current_actor(), subject=f"user:{user.username}",
           administrations=[code] if code else [], details=details)


def authenticate(session: Session, username: str, password: str) -> DashboardUser | None:
    """The user with these credentials, or None (unknown, wrong password, disabled)."""
    user = _named(session, username)
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return None
    # scrypt keys HMAC with the password, which pads a short key with NUL bytes: the
    # password followed by NULs has the same hash. No password holds a NUL
    # (`password_problem`), so one that does is refused, after the same hash.
    matches = check_password_hash(user.password_hash, password) and "\x00" not in password
    if not matches or user.disabled_at is not None:
        return None
    user.last_login_at = clock.now()
    return user


@transactional
def sign_in(session: Session, username: str, password: str, address: str | None
            ) -> DashboardUser | None:
    """`authenticate`, with the attempt in the audit log (from `address`)."""
    user = authenticate(session, username, password)
    if user is None:
        shown = "".join(c if c.isprintable() else "\ufffd" for c in username[:64])
        record(session, "user.login_failed", actor="system",
               subject=f"user:{shown}", details={"address": address})
        return None
    record(session, "user.login", actor=f"user:{user.username}",
           subject=f"user:{user.username}", details={"address": address})
    return user


def active_user(session: Session, user_id: int) -> DashboardUser | None:
    user = session.get(DashboardUser, user_id)
    if user is None or user.disabled_at is not None:
        return None
    return user


def list_users(session: Session) -> list[DashboardUser]:
    return list(session.scalars(select(DashboardUser).order_by(DashboardUser.username)))


def get_user(session: Session, username: str) -> DashboardUser:
    user = _named(session, username)
    if user is None:
        raise NotFound(f"no user {username!r}", fields={"username": "unknown"})
    return user


@transactional
def disable_user(session: Session, username: str) -> DashboardUser:
    """Disable a user and end every session they have."""
    user = get_user(session, username)
    if user.disabled_at is None:
        user.disabled_at = clock.now()
        _audit(session, "user.disabled", user)
    sessions.end_all(session, user.id)
    return user


@transactional
def enable_user(session: Session, username: str) -> DashboardUser:
    """Let a disabled user sign in again (with the password they had)."""
    user = get_user(session, username)
    if user.disabled_at is not None:
        user.disabled_at = None
        _audit(session, "user.enabled", user)
    return user


@transactional
def set_password(session: Session, username: str, password: str) -> DashboardUser:
    """Give a user a new password and end every session they have (a stolen session
    should not outlive the password it was opened with)."""
    user = get_user(session, username)
    problem = password_problem(password, user.username)
    if problem:
        raise InvalidInput("the password cannot be used", fields={"password": problem})
    user.password_hash = generate_password_hash(password, method=PASSWORD_METHOD)
    sessions.end_all(session, user.id)
    _audit(session, "user.password_changed", user)
    return user
