"""Who is acting: the actor string audit entries carry when the caller does not name one.

In order: the innermost `acting_as(...)` block; `g.audit_actor` in a request (the API
sets `client:<id>` once it has authenticated a token, the dashboard `user:<name>` after a
login); `cli` inside an `aeohub` command; otherwise `system` (the scheduler's jobs,
background threads).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import click
from flask import g, has_app_context, has_request_context

_acting: ContextVar[str | None] = ContextVar("aeohub_audit_actor", default=None)


@contextmanager
def acting_as(actor: str) -> Iterator[str]:
    """Attribute audit entries recorded inside the block to `actor`."""
    token = _acting.set(actor)
    try:
        yield actor
    finally:
        _acting.reset(token)


def current_actor(given: str | None = None) -> str:
    """`given` when it names someone, else the actor of the current context."""
    if given:
        return given
    explicit = _acting.get()
    if explicit:
        return explicit
    if has_request_context() or has_app_context():
        from_request = g.get("audit_actor")
        if from_request:
            return str(from_request)
    if click.get_current_context(silent=True) is not None:
        return "cli"
    return "system"
