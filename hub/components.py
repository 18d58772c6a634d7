"""The domain packages that hook into the app (`init_app(app)`), in dependency order.

Each module listed here defines `init_app(app: Flask) -> None` that registers its
blueprints, readiness checks and teardown. Add a package here when it gains routes.
"""

from __future__ import annotations

COMPONENTS: list[str] = [
    "hub.sync.readiness",
    "hub.usage",
    "hub.auth.routes",
    "hub.api.routes",
    "hub.audit.routes",
    "hub.metrics",
    "hub.web.routes",
    "hub.notify.routes",
    "hub.sync.gauges",
    "hub.audit.gauges",
    "hub.notify.gauges",
]
