"""AEO Hub: share Authorised Economic Operator registries under mutual recognition.

`create_app(config=None)` builds the Flask application. `config` is a profile name
(`default`, `testing`, `production`), a mapping of settings, or None (the profile named by
`AEOHUB_ENV`, else `default`). See `hub.settings` for the layering.

The app has two layers: its core (configuration, logging, error handling, the database
and the `aeohub` commands) and what serving requests needs (`init_http`: the web app, the
API, the OAuth server, request hooks). The `aeohub` commands run in the core alone, so
that a command starts without importing every route; `serve` and `demo` add the rest.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from hub.components import COMPONENTS

try:
    __version__ = metadata.version("aeohub")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

_HTTP_KEY = "aeohub.http"


def create_app(config: str | Mapping[str, Any] | None = None, *, http: bool = True) -> Flask:
    """Build the hub's Flask application; with `http=False`, only its core (see above)."""
    # Every `import hub.<anything>` runs this module first: the app's modules (SQLAlchemy,
    # cryptography, the commands) load only when an app is built, so that `aeohub
    # --version` and `--help` stay light. hub.cli also imports this module.
    from hub import db, errors, ids, jsonio, logs  # noqa: PLC0415
    from hub.cli import install_commands  # noqa: PLC0415
    from hub.settings import load_config  # noqa: PLC0415

    app = Flask(__name__, instance_relative_config=True)
    # Answers keep the order the code builds them in; sorting every key of a 10,000-item
    # batch answer costs more than the rest of its serialisation. orjson encodes them.
    jsonio.init_app(app)
    settings = load_config(config, instance_path=app.instance_path)
    app.config.update(settings)
    if int(app.config.get("TRUSTED_PROXIES") or 0) > 0:
        hops = int(app.config["TRUSTED_PROXIES"])
        # Only the address and the scheme: the Host header decides nothing (see ISSUER).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops,  # type: ignore[method-assign]
                                x_host=0, x_port=0, x_prefix=0)
    if app.config["DATABASE_URL"].startswith("sqlite:///") and ":memory:" not in app.config[
        "DATABASE_URL"
    ]:
        Path(app.config["DATABASE_URL"][len("sqlite:///"):]).parent.mkdir(
            parents=True, exist_ok=True
        )
    if not app.config.get("TESTING"):
        logs.configure_logging(app.config["LOG_LEVEL"], app.config["LOG_FORMAT"])
    logs.init_app(app)
    errors.init_app(app)
    ids.init_app(app)
    db.init_app(app)
    install_commands(app)
    if http:
        init_http(app)
    return app


def init_http(app: Flask) -> None:
    """Add what serving requests needs to `app`: the health routes and every component's
    `init_app` (blueprints, request hooks, readiness checks). Once per app."""
    from hub import health  # noqa: PLC0415 - as create_app's imports: built apps only

    if _HTTP_KEY in app.extensions:
        return
    app.extensions[_HTTP_KEY] = True
    app.register_blueprint(health.bp)
    for init in _component_initialisers():
        init(app)


def _component_initialisers() -> list[Any]:
    """`init_app` functions of the domain packages, in dependency order."""
    return [importlib.import_module(name).init_app for name in COMPONENTS]
