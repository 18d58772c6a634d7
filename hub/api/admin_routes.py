"""Admin API for the sync engine (`/api/v1/admin`): connections, runs, quarantine.

Thin routes over `hub.sync.admin`, whose services own their transactions. Every route
needs `node:admin` (the caller's own administration's connections) or `admin` (all of
them); the service decides the reach.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, jsonify, request, url_for
from flask.typing import ResponseReturnValue

from hub import db
from hub.api import schemas
from hub.auth.guard import current_principal, require_scope
from hub.errors import InvalidInput, NotFound
from hub.sync import admin as sync_admin
from hub.sync.connections import SyncSettings

bp = Blueprint("api_v1_admin", __name__, url_prefix="/api/v1/admin")

SCOPE = "node:admin"
BODY_LIMIT = 256 * 1024

_create = schemas.ConnectionCreateSchema()
_edit = schemas.ConnectionEditSchema()
_runs_query = schemas.RunQuerySchema()
_quarantine_query = schemas.QuarantineQuerySchema()
_difference_query = schemas.DifferenceQuerySchema()
_replay = schemas.ReplaySchema()
_dismiss = schemas.DismissSchema()


def _settings() -> SyncSettings:
    return SyncSettings.from_config(current_app.config)


def _body(*, optional: bool = False) -> Any:
    request.max_content_length = BODY_LIMIT
    if optional and not request.get_data(cache=True):
        return {}
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise InvalidInput("the request body must be a JSON object",
                           fields={"(body)": "not a JSON object"})
    return data


def _id(value: int, what: str) -> int:
    """Ids beyond what a database row can hold are unknown, not an error of the server."""
    if value > db.MAX_ID:
        raise NotFound(f"no {what} {value}", fields={"id": "unknown"})
    return value


# --- connections -----------------------------------------------------------------------


@bp.get("/connections")
@require_scope(SCOPE)
def connections() -> ResponseReturnValue:
    rows = sync_admin.list_connections(db.session(), current_principal())
    return jsonify({"connections": [sync_admin.connection_dict(c) for c in rows]})


@bp.post("/connections")
@require_scope(SCOPE)
def create_connection() -> ResponseReturnValue:
    payload = _create.load(_body())
    connection = sync_admin.create_connection(db.session(), _settings(), current_principal(),
                                              payload)
    response = jsonify(sync_admin.connection_dict(connection))
    response.headers["Location"] = url_for(".connection", connection_id=connection.id)
    return response, 201


@bp.get("/connections/<int:connection_id>")
@require_scope(SCOPE)
def connection(connection_id: int) -> ResponseReturnValue:
    row = sync_admin.get_connection(db.session(), current_principal(),
                                    _id(connection_id, "connection"))
    return jsonify(sync_admin.connection_dict(row))


@bp.patch("/connections/<int:connection_id>")
@require_scope(SCOPE)
def edit_connection(connection_id: int) -> ResponseReturnValue:
    payload = _edit.load(_body())
    row = sync_admin.edit_connection(db.session(), _settings(), current_principal(),
                                     _id(connection_id, "connection"), payload)
    return jsonify(sync_admin.connection_dict(row))


@bp.post("/connections/<int:connection_id>/sync")
@require_scope(SCOPE)
def request_sync(connection_id: int) -> ResponseReturnValue:
    body = sync_admin.request_sync(db.session(), current_principal(),
                                   _id(connection_id, "connection"))
    response = jsonify(body)
    response.headers["Location"] = url_for(".runs", connection=connection_id)
    return response, 202


# --- runs ------------------------------------------------------------------------------


@bp.get("/runs")
@require_scope(SCOPE)
def runs() -> ResponseReturnValue:
    query = _runs_query.load(request.args)
    return jsonify(sync_admin.list_runs(
        db.session(), current_principal(), connection_id=query["connection"],
        status=query["status"], before=query["before"], limit=query["limit"]))


@bp.get("/runs/<int:run_id>")
@require_scope(SCOPE)
def run(run_id: int) -> ResponseReturnValue:
    return jsonify(sync_admin.run_detail(db.session(), current_principal(),
                                         _id(run_id, "sync run")))


@bp.get("/runs/<int:run_id>/difference")
@require_scope(SCOPE)
def run_difference(run_id: int) -> ResponseReturnValue:
    """The operators a run creates, updates or removes (held and dry runs: would), or the
    records it rejected (`kind`), paged by `after`."""
    query = _difference_query.load(request.args)
    return jsonify(sync_admin.run_difference(
        db.session(), current_principal(), _id(run_id, "sync run"), query["kind"],
        after=query["after"], limit=query["limit"]))


@bp.post("/runs/<int:run_id>/confirm")
@require_scope(SCOPE)
def confirm_run(run_id: int) -> ResponseReturnValue:
    return jsonify(sync_admin.decide_run(db.get_db(), _settings(), db.session(),
                                         current_principal(), _id(run_id, "sync run"),
                                         "confirm"))


@bp.post("/runs/<int:run_id>/discard")
@require_scope(SCOPE)
def discard_run(run_id: int) -> ResponseReturnValue:
    return jsonify(sync_admin.decide_run(db.get_db(), _settings(), db.session(),
                                         current_principal(), _id(run_id, "sync run"),
                                         "discard"))


# --- quarantine ------------------------------------------------------------------------


@bp.get("/quarantine")
@require_scope(SCOPE)
def quarantine_list() -> ResponseReturnValue:
    query = _quarantine_query.load(request.args)
    return jsonify(sync_admin.list_quarantine(
        db.session(), current_principal(), connection_id=query["connection"],
        status=query["status"], after=query["after"], limit=query["limit"]))


@bp.get("/quarantine/<int:record_id>")
@require_scope(SCOPE)
def quarantined(record_id: int) -> ResponseReturnValue:
    return jsonify(sync_admin.quarantine_detail(db.session(), current_principal(),
                                                _id(record_id, "quarantined record")))


@bp.post("/quarantine/<int:record_id>/replay")
@require_scope(SCOPE)
def replay(record_id: int) -> ResponseReturnValue:
    payload = _replay.load(_body(optional=True))
    return jsonify(sync_admin.replay_quarantined(db.session(), current_principal(),
                                                 _id(record_id, "quarantined record"),
                                                 payload["corrections"]))


@bp.post("/quarantine/<int:record_id>/dismiss")
@require_scope(SCOPE)
def dismiss(record_id: int) -> ResponseReturnValue:
    payload = _dismiss.load(_body(optional=True))
    return jsonify(sync_admin.dismiss_quarantined(db.session(), current_principal(),
                                                  _id(record_id, "quarantined record"),
                                                  payload["note"]))
