"""Node push and signed webhooks: suspensions reach partners in seconds.

- `push`: `POST /api/v1/nodes/notify` marks a connection for an immediate sync, which the
  scheduler process runs (coalescing notifications that arrive during a run).
- `events`: the dispatcher derives webhook events from the change feed (through the
  data-sharing policy of each subscribing client) and from sync runs.
- `delivery`: signed, ordered, retried, logged deliveries; failing subscriptions pause.
- `worker`: the `aeohub worker` process that dispatches and delivers (never web workers).
- `signing`: sign and verify (`verify(secret, headers, body, tolerance=300)`).
"""

from __future__ import annotations

from flask import Flask

#: Delivery settings and their defaults (each overridable by `AEOHUB_<NAME>`).
DEFAULTS: dict[str, object] = {
    # Hosts webhooks may reach; None: the same as NODE_HOSTS_ALLOWED.
    "WEBHOOK_HOSTS_ALLOWED": None,
    "WEBHOOK_TIMEOUT_SECONDS": 5.0,
    "WEBHOOK_RETRY_BASE_SECONDS": 5.0,
    "WEBHOOK_RETRY_MAX_SECONDS": 3600.0,
    "WEBHOOK_MAX_ATTEMPTS": 12,
    "WEBHOOK_PAUSE_AFTER_FAILURES": 20,
}


def init_app(app: Flask) -> None:
    from hub.notify import routes

    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    app.register_blueprint(routes.bp)
