"""Layered configuration: `config/default.py`, then a profile, then `AEOHUB_*` variables.

The profile is `default`, `testing` or `production`, chosen by the `config` argument of
`create_app` or by `AEOHUB_ENV`. An explicit mapping given to `create_app` is applied last
(tests use it). Secrets come only from the environment in production.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from config import default as default_config

PROFILES = ("default", "testing", "production")
ENV_PREFIX = "AEOHUB_"


class ConfigurationError(RuntimeError):
    """The configuration cannot be used; the message says which setting and why."""


def _module_settings(module_name: str) -> dict[str, Any]:
    module = importlib.import_module(module_name)
    return {key: getattr(module, key) for key in dir(module) if key.isupper()}


def _parse_env_value(raw: str) -> Any:
    """Numbers, booleans, null, lists and objects are JSON; anything else is a string."""
    stripped = raw.strip()
    if stripped and (stripped[0] in "[{\"-0123456789" or stripped in ("true", "false", "null")):
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            return raw
    return raw


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """Settings named by `AEOHUB_*` variables (`AEOHUB_ENV` picks the profile instead)."""
    overrides: dict[str, Any] = {}
    for name, raw in environ.items():
        if name.startswith(ENV_PREFIX) and name != "AEOHUB_ENV":
            key = name[len(ENV_PREFIX):]
            if key.startswith("TEST_"):
                continue  # test-suite settings, read by the fixtures
            overrides[key] = _parse_env_value(raw)
    return overrides


def load_config(
    config: str | Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    instance_path: str | Path | None = None,
) -> dict[str, Any]:
    """Return the effective settings as a dict of upper-case keys.

    `config` is a profile name or a mapping of explicit settings (which may name the
    profile under `ENV`).
    """
    environ = os.environ if environ is None else environ
    explicit: dict[str, Any] = {}
    if isinstance(config, str):
        profile = config
    else:
        explicit = dict(config or {})
        profile = str(explicit.get("ENV") or environ.get("AEOHUB_ENV") or "default")
    if profile not in PROFILES:
        raise ConfigurationError(
            f"unknown configuration profile {profile!r}: expected one of {', '.join(PROFILES)}"
        )
    settings = _module_settings("config.default")
    if profile != "default":
        settings.update(_module_settings(f"config.{profile}"))
    settings.update(env_overrides(environ))
    settings.update(explicit)
    settings["ENV"] = profile

    if not settings.get("DATABASE_URL"):
        if profile == "production":
            raise ConfigurationError(
                "AEOHUB_DATABASE_URL must be set in production (a PostgreSQL URL such as "
                "postgresql+psycopg://user@host/db)"
            )
        base = Path(instance_path) if instance_path else Path.cwd() / "instance"
        settings["DATABASE_URL"] = f"sqlite:///{base / 'aeohub.sqlite3'}"
    if not settings.get("IMPORT_DIR") and profile != "production":
        base = Path(instance_path) if instance_path else Path.cwd() / "instance"
        settings["IMPORT_DIR"] = str(base / "imports")
    if profile == "production":
        if settings.get("SECRET_KEY") in (None, "", default_config.DEFAULT_SECRET_KEY):
            raise ConfigurationError(
                "refusing to start in production with the default secret key: "
                "set AEOHUB_SECRET_KEY to a long random value"
            )
        if not settings.get("ENCRYPTION_KEY"):
            raise ConfigurationError(
                "AEOHUB_ENCRYPTION_KEY must be set in production "
                "(it encrypts connection secrets at rest)"
            )
        if not settings.get("ISSUER"):
            raise ConfigurationError(
                "AEOHUB_ISSUER must be set in production: the hub's public https base URL "
                "(the OAuth issuer; never taken from the Host header)"
            )
    return settings
