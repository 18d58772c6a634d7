"""The domain packages that hook into the app (`init_app(app)`), in dependency order.

Each module listed here defines `init_app(app: Flask) -> None` that registers its
blueprints, readiness checks and teardown. Add a package here when it gains routes.
"""

from __future__ import annotations

COMPONENTS: list[str] = [
    "hub.sync.readiness",
    "hub.usage",
    "hub.auth",
    "hub.api",
    "hub.audit",
    "hub.metrics",
    "hub.web",
    "hub.notify",
    "hub.sync.gauges",
    "hub.audit.gauges",
    "hub.notify.gauges",
]
