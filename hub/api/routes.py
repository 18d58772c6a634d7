"""The partner API v1 (`/api/v1`): thin routes over `hub.api.service` and the policy."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    g,
    jsonify,
    request,
    stream_with_context,
)
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from hub import db, gcpause
from hub.api import admin_routes, docs, queries, schemas, service, usage_hooks, verification
from hub.api.openapi import build_spec
from hub.auth import policy, shared
from hub.auth.guard import QUOTA_KEY, charge, current_principal, require_scope
from hub.auth.oauth2 import issuer
from hub.auth.policy import View
from hub.errors import InvalidInput, NotFound
from hub.notify import changes

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")

SINGLE_BODY_LIMIT = 64 * 1024
BATCH_BODY_LIMIT = 8 * 1024 * 1024

_match = schemas.MatchRequestSchema()
_operator_query = schemas.OperatorQuerySchema()
_changes_query = schemas.ChangesQuerySchema()
_declaration_query = schemas.DeclarationCodesQuerySchema()


#: The revision of the IETF httpapi rate-limit header fields draft the answers follow.
RATELIMIT_DRAFT = "draft-ietf-httpapi-ratelimit-headers-10"
#: The name of the hub's one quota policy in those fields.
RATELIMIT_POLICY = "default"


def ratelimit_fields(response: Response) -> Response:
    """`RateLimit-Policy` and `RateLimit` (RATELIMIT_DRAFT) on every answer to a client
    whose token was checked: its quota per window, the units left and the seconds until
    the window resets."""
    quota = g.get(QUOTA_KEY)
    if quota is not None:
        response.headers["RateLimit-Policy"] = (
            f'"{RATELIMIT_POLICY}";q={quota.limit};w={quota.window_seconds}')
        response.headers["RateLimit"] = (
            f'"{RATELIMIT_POLICY}";r={quota.remaining};t={quota.reset}')
    return response


def refuse_nul_paths() -> None:
    """Nothing is named with a NUL character (no database column takes one): a path
    holding one names nothing, before any lookup sends it to the database."""
    if "\x00" in request.path:
        raise NotFound("no resource has a NUL character in its name",
                       fields={"(path)": "NUL character"})


def init_app(app: Flask) -> None:
    """Register the API's blueprints and its request hooks."""
    app.after_request(ratelimit_fields)
    app.before_request(refuse_nul_paths)
    app.before_request(queries.check_query)
    app.register_blueprint(bp)
    app.register_blueprint(admin_routes.bp)
    app.register_blueprint(docs.bp)


def _view(session: Session | None = None) -> View:
    principal = current_principal()
    return policy.view_for(session or db.session(), principal.programme_id,
                           admin=principal.is_admin)


def _reading() -> tuple[Session, View]:
    """The request's reader session (verify and match only read) and the client's view."""
    session = db.reader()
    return session, _view(session)


def _body(limit: int = SINGLE_BODY_LIMIT) -> Any:
    request.max_content_length = int(current_app.config.get("API_MAX_BODY_BYTES", limit)
                                     if limit == SINGLE_BODY_LIMIT else limit)
    data = request.get_json(silent=True)
    if data is None:
        raise InvalidInput("the request body must be a JSON object",
                           fields={"(body)": "not JSON"})
    return data


def _with_version(payload: dict[str, Any]) -> Response:
    response = jsonify(payload)
    if "data_version" in payload:
        response.headers["X-Data-Version"] = str(payload["data_version"])
        response.headers["X-Data-Age"] = str(payload["data_age_seconds"])
    return response


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    return jsonify(build_spec(issuer() + "/"))


@bp.post("/verify")
@require_scope("verify", in_view=True)
def verify() -> ResponseReturnValue:
    payload = schemas.load_verify(_body())
    # the token's statement also reads the trader's operators: one round trip
    read_ahead = verification.authenticate(payload)
    session, view = _reading()
    decision = verification.verify(session, view, payload, read_ahead)
    usage_hooks.note_decisions(view, [decision])
    return _with_version({**shared.view_data_version(session, view), "decision": decision})


@bp.post("/verify/batch")
@require_scope("verify")
def verify_batch() -> ResponseReturnValue:
    # Parsing, answering and encoding up to 10,000 references: the collector paused for
    # all of it (`hub.gcpause`).
    with gcpause.paused():
        payload = schemas.load_batch(_body(BATCH_BODY_LIMIT))
        # A batch costs its item count (times the configured cost of an item), less
        # what the request itself already cost when its token was checked.
        per_item = int(current_app.config["RATE_LIMIT_BATCH_ITEM_COST"])
        base = int(current_app.config["RATE_LIMIT_REQUEST_COST"])
        charge(max(0, len(payload["traders"]) * per_item - base), field="traders",
               per_item=per_item)
        session, view = _reading()
        decisions = verification.verify_batch(session, view, payload)
        usage_hooks.note_decisions(view, [d for d in decisions
                                          if d["decision"] != verification.INVALID_ITEM])
        return _with_version({**shared.view_data_version(session, view),
                              "decisions": decisions})


@bp.post("/match")
@require_scope("match")
def match() -> ResponseReturnValue:
    payload = _match.load(_body())
    session, view = _reading()
    candidates = verification.match(session, view, payload)
    usage_hooks.note_match(view, candidates)
    return _with_version({**shared.view_data_version(session, view),
                          "candidates": candidates})


@bp.get("/operators")
@require_scope("registry:read")
def operators() -> ResponseReturnValue:
    query = _operator_query.load(request.args)
    view = _view()
    page = service.list_operators(db.session(), view, **query)
    usage_hooks.note_read(view, page.get("items") or [])
    return _with_version(page)


@bp.get("/operators/<int:operator_id>")
@require_scope("registry:read")
def operator(operator_id: int) -> ResponseReturnValue:
    view = _view()
    detail = service.operator_detail(db.session(), view, operator_id)
    usage_hooks.note_read(view, [detail.get("operator", detail)])
    return _with_version(detail)


@bp.get("/operators/<int:operator_id>/history")
@require_scope("registry:read")
def operator_history(operator_id: int) -> ResponseReturnValue:
    view = _view()
    history = service.operator_history(db.session(), view, operator_id)
    usage_hooks.note_read(view, [history.get("operator", {"id": operator_id})])
    return _with_version(history)


@bp.get("/operators/<int:operator_id>/recognition")
@require_scope("registry:read")
def operator_recognition(operator_id: int) -> ResponseReturnValue:
    session, view = db.session(), _view()
    row, _grant = service.visible_operator(session, view, operator_id)
    recognitions = verification.recognitions_of(session, view, row)
    return _with_version({**shared.data_version(session, [row.programme_id]),
                          "operator_id": row.id, "recognitions": recognitions})


@bp.get("/operators/<int:operator_id>/declaration-codes")
@require_scope("registry:read")
def operator_declaration_codes(operator_id: int) -> ResponseReturnValue:
    query = _declaration_query.load(request.args)
    session, view = db.session(), _view()
    row, grant = service.visible_operator(session, view, operator_id)
    declaring = service.declaring_administration(session, view, query["declaring"])
    answer = service.declaration_codes(session, grant, row.id, declaring, query["date"])
    usage_hooks.note_read(view, [{"id": row.id, "programme": answer["programme"]}])
    return _with_version({**shared.data_version(session, [row.programme_id]), **answer})


@bp.get("/programmes")
@require_scope("registry:read")
def programmes() -> ResponseReturnValue:
    return jsonify(service.list_programmes(db.session()))


@bp.get("/arrangements")
@require_scope("registry:read")
def arrangements() -> ResponseReturnValue:
    return jsonify(service.list_arrangements(db.session(), _view()))


@bp.get("/changes")
@require_scope("changes:read")
def changes_feed() -> ResponseReturnValue:
    query = _changes_query.load(request.args)
    page = changes.changes_page(db.session(), db.get_db(), _view(), query["cursor"],
                                query["limit"])
    return _with_version(page)


@bp.get("/export/<programme>.ndjson")
@require_scope("export")
def export(programme: str) -> ResponseReturnValue:
    session, view = db.session(), _view()
    lines = service.export_lines(session, view, programme)
    version = shared.data_version(session, view.programme_ids())
    response = Response(stream_with_context(lines), mimetype="application/x-ndjson")
    response.headers["X-Data-Version"] = str(version["data_version"])
    response.headers["X-Data-Age"] = str(version["data_age_seconds"])
    return response
