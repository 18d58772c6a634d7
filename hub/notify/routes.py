"""Routes of node push and webhooks under `/api/v1`: thin, over `push` and `service`.

- `POST /api/v1/nodes/notify` (scope `node:admin`): 202 with what was scheduled.
- `GET|POST /api/v1/webhooks`, `GET|PATCH|DELETE /api/v1/webhooks/<id>`,
  `POST /api/v1/webhooks/<id>/rotate-secret`, `POST /api/v1/webhooks/<id>/ping`,
  `GET /api/v1/webhooks/<id>/deliveries`, `GET /api/v1/webhooks/event-types`
  (scope `webhooks`; a client sees only its own subscriptions).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request
from flask.typing import ResponseReturnValue

from hub import db
from hub.auth.guard import current_principal, require_scope
from hub.errors import InvalidInput
from hub.notify import push, schemas, service
from hub.notify.destinations import WebhookSettings

bp = Blueprint("notify_v1", __name__, url_prefix="/api/v1")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
BODY_LIMIT = 64 * 1024

_notify = schemas.NodeNotifySchema()
_create = schemas.SubscriptionCreateSchema()
_update = schemas.SubscriptionUpdateSchema()
_deliveries = schemas.DeliveriesQuerySchema()


def _body() -> Any:
    request.max_content_length = BODY_LIMIT
    data = request.get_json(silent=True)
    if data is None:
        raise InvalidInput("the request body must be a JSON object",
                           fields={"(body)": "not JSON"})
    return data


def _settings() -> WebhookSettings:
    return WebhookSettings.from_config(current_app.config)


@bp.post("/nodes/notify")
@require_scope("node:admin")
def nodes_notify() -> ResponseReturnValue:
    payload = _notify.load(_body())
    result = push.request_sync(db.session(), current_principal(), payload["connection"])
    return jsonify(result), 202


@bp.get("/webhooks/event-types")
@require_scope("webhooks")
def event_types() -> ResponseReturnValue:
    return jsonify({"events": list(service.allowed_event_types(current_principal()))})


@bp.get("/webhooks")
@require_scope("webhooks")
def list_webhooks() -> ResponseReturnValue:
    subs = service.list_subscriptions(db.session(), current_principal())
    return jsonify({"subscriptions": [service.subscription_dict(s) for s in subs]})


@bp.post("/webhooks")
@require_scope("webhooks")
def create_webhook() -> ResponseReturnValue:
    payload = _create.load(_body())
    created = service.create_subscription(db.session(), db.get_db(), _settings(),
                                          current_principal(), **payload)
    body = {**service.subscription_dict(created.subscription), "secret": created.secret}
    response = jsonify(body)
    response.headers["Location"] = f"/api/v1/webhooks/{body['id']}"
    return response, 201


@bp.get("/webhooks/<public_id>")
@require_scope("webhooks")
def show_webhook(public_id: str) -> ResponseReturnValue:
    sub = service.get_subscription(db.session(), current_principal(), public_id)
    return jsonify(service.subscription_dict(sub))


@bp.patch("/webhooks/<public_id>")
@require_scope("webhooks")
def update_webhook(public_id: str) -> ResponseReturnValue:
    payload = _update.load(_body())
    sub = service.update_subscription(db.session(), _settings(), current_principal(),
                                      public_id, **payload)
    return jsonify(service.subscription_dict(sub))


@bp.delete("/webhooks/<public_id>")
@require_scope("webhooks")
def delete_webhook(public_id: str) -> ResponseReturnValue:
    service.delete_subscription(db.session(), current_principal(), public_id)
    # No content, so no Content-Type either (Flask would say text/html)
    done = current_app.response_class(status=204)
    done.headers.remove("Content-Type")
    return done


@bp.post("/webhooks/<public_id>/rotate-secret")
@require_scope("webhooks")
def rotate_webhook_secret(public_id: str) -> ResponseReturnValue:
    sub, secret = service.rotate_secret(db.session(), _settings(), current_principal(),
                                        public_id)
    return jsonify({**service.subscription_dict(sub), "secret": secret})


@bp.post("/webhooks/<public_id>/ping")
@require_scope("webhooks")
def ping_webhook(public_id: str) -> ResponseReturnValue:
    delivery = service.ping(db.session(), current_principal(), public_id)
    return jsonify({"event_id": delivery.event_id, "type": delivery.event_type,
                    "status": "queued"}), 202


@bp.get("/webhooks/<public_id>/deliveries")
@require_scope("webhooks")
def webhook_deliveries(public_id: str) -> ResponseReturnValue:
    query = _deliveries.load(request.args)
    session = db.session()
    sub = service.get_subscription(session, current_principal(), public_id)
    rows = service.recent_deliveries(session, sub, status=query["status"],
                                     limit=query["limit"])
    attempts = service.attempts_of(session, [r.id for r in rows])
    return jsonify({"subscription": sub.public_id, "status": sub.status,
                    "deliveries": [service.delivery_dict(r, attempts[r.id]) for r in rows]})
