"""`GET /api/v1/audit/head`: the chain head, signed with the hub's audit key.

Public on purpose: it reveals only how many entries there are and the latest hash, and
partners fetch it to keep copies. See `hub.audit.signing` for how to check it.
"""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue

from hub import db
from hub.audit import service, signing

bp = Blueprint("audit", __name__, url_prefix="/api/v1/audit")


def init_app(app: Flask) -> None:
    """Serve the signed chain head at /api/v1/audit/head."""
    app.register_blueprint(bp)


@bp.get("/head")
def chain_head() -> ResponseReturnValue:
    key = signing.signing_key(current_app.config)
    head = service.head(db.session())
    body = signing.sign_head(key, head.seq, head.hash, head.recorded_at_text)
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response
