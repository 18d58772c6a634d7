"""Health endpoints: `/healthz` (the process is up) and `/readyz` (it can serve).

`/readyz` checks that the database answers; feed freshness joins it with the sync engine.
Readiness checks are registered by other packages through `add_readiness_check`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from hub import db

bp = Blueprint("health", __name__)

ReadinessCheck = Callable[[], tuple[bool, dict[str, Any]]]
CHECKS_KEY = "aeohub.readiness"


def add_readiness_check(app: Flask, name: str, check: ReadinessCheck) -> None:
    """Register a check returning (ready, details); a failing check makes /readyz 503."""
    app.extensions.setdefault(CHECKS_KEY, {})[name] = check


def _database_check() -> tuple[bool, dict[str, Any]]:
    try:
        db.session().execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means not ready
        return False, {"error": type(exc).__name__}
    return True, {"backend": db.get_db().dialect}


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    checks: dict[str, ReadinessCheck] = {"database": _database_check}
    checks.update(current_app.extensions.get(CHECKS_KEY, {}))
    results: dict[str, Any] = {}
    ready = True
    for name, check in checks.items():
        ok, details = check()
        results[name] = {"ok": ok, **details}
        ready = ready and ok
    body = {"status": "ready" if ready else "not_ready", "checks": results}
    return jsonify(body), (200 if ready else 503)
