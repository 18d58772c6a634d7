"""Layered configuration, checked as a whole: `config/default.py`, a profile, `AEOHUB_*`.

The profile is `default`, `testing` or `production`, chosen by the `config` argument of
`create_app` or by `AEOHUB_ENV`. An explicit mapping given to `create_app` is applied last
(tests use it). Secrets come only from the environment in production.

Each `AEOHUB_<NAME>` variable is parsed as the declared type of the setting `<NAME>` (its
annotation in `config/default.py`, else the type of its default; Flask's own settings by
their defaults), never guessed: a numeric secret key stays a string. `load_config` then
checks the whole configuration (key lengths and formats, the issuer, the audit signing
key, the database URL, webhook host rules, the production requirements) and raises one
`ConfigurationError` listing every problem. A variable naming no setting is a warning,
with the nearest known name. `aeohub config check` runs the same check.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import ipaddress
import json
import logging
import math
import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from flask import Flask
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from config import default as default_config
from hub.audit.signing import parse_key

PROFILES = ("default", "testing", "production")
ENV_PREFIX = "AEOHUB_"
#: `AEOHUB_*` variables that are not settings: the profile, and those of tools and tests.
NOT_SETTINGS = frozenset({"ENV", "BENCH_SCALE", "WITH_BENCHMARKS", "SYNC_TEST_HOOK",
                          "NODE_TOKEN"})
MIN_SECRET_KEY_LENGTH = 32
MAX_SCHEDULER_WORKERS = 64
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


class ConfigurationError(RuntimeError):
    """The configuration cannot be used; `problems` says, for each setting, why."""

    def __init__(self, problems: list[str] | str) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__(self.report())

    def report(self) -> str:
        if len(self.problems) == 1:
            return f"configuration problem: {self.problems[0]}"
        return "configuration problems:\n" + "\n".join(f"  - {p}" for p in self.problems)


@dataclass
class Checked:
    """The effective settings, and warnings that do not stop the hub."""

    settings: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def _module_settings(module_name: str) -> dict[str, Any]:
    module = importlib.import_module(module_name)
    return {key: getattr(module, key) for key in dir(module) if key.isupper()}


def declared_types() -> dict[str, Any]:
    """Every known setting and its type: the annotations of `config/default.py`, else the
    type of the default (of the profiles' settings and Flask's own too)."""
    known: dict[str, Any] = {}
    for name, value in Flask.default_config.items():
        known[name] = type(value) if value is not None else str | None
    for profile in PROFILES:
        module = "config.default" if profile == "default" else f"config.{profile}"
        for name, value in _module_settings(module).items():
            known.setdefault(name, type(value) if value is not None else str | None)
            if profile == "default":
                known[name] = type(value) if value is not None else str | None
    hints = inspect.get_annotations(default_config, eval_str=True)
    known.update({name: hint for name, hint in hints.items() if name.isupper()})
    known.pop("DEFAULT_SECRET_KEY", None)
    return known


def parse_value(raw: str, declared: Any) -> Any:
    """`raw` (an environment variable's text) as a value of the `declared` type; raises
    ValueError saying what was expected."""
    args = typing.get_args(declared)
    if typing.get_origin(declared) in (typing.Union, types.UnionType):
        if type(None) in args and raw.strip().lower() in ("", "none", "null"):
            return None
        inner = [a for a in args if a is not type(None)]
        return parse_value(raw, inner[0] if len(inner) == 1 else str)
    base = typing.get_origin(declared) or declared
    text = raw.strip()
    if base is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError("expected true or false")
    if base is int:
        try:
            return int(text)
        except ValueError:
            raise ValueError("expected a whole number") from None
    if base is float:
        try:
            number = float(text)
        except ValueError:
            raise ValueError("expected a number") from None
        if not math.isfinite(number):
            raise ValueError("expected a finite number")
        return number
    if base in (list, tuple, set, frozenset):
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError:
                raise ValueError("expected a JSON array or comma-separated values") from None
            if not isinstance(items, list):
                raise ValueError("expected a JSON array or comma-separated values")
            return items
        return [item.strip() for item in text.split(",") if item.strip()]
    if base is dict:
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError("expected a JSON object") from None
        if not isinstance(value, dict):
            raise ValueError("expected a JSON object")
        return value
    if base is str or base is Any:
        return raw
    # Flask's timedelta settings (PERMANENT_SESSION_LIFETIME, ...) and the like: seconds.
    try:
        return int(text)
    except ValueError:
        raise ValueError("expected a number of seconds") from None


def env_overrides(environ: Mapping[str, str], known: Mapping[str, Any]
                  ) -> tuple[dict[str, Any], list[str], list[str]]:
    """Settings named by `AEOHUB_*` variables, parsed by type: (settings, problems,
    warnings about variables that name no setting)."""
    overrides: dict[str, Any] = {}
    problems: list[str] = []
    warnings: list[str] = []
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX):]
        if key in NOT_SETTINGS or key.startswith("TEST_"):
            continue
        if key not in known:
            nearest = difflib.get_close_matches(key, list(known), n=1)
            hint = f"; did you mean {ENV_PREFIX}{nearest[0]}?" if nearest else ""
            warnings.append(f"{name} is not a setting and is ignored{hint}")
            continue
        try:
            overrides[key] = parse_value(raw, known[key])
        except ValueError as exc:
            problems.append(f"{name}: {exc}")
    return overrides, problems, warnings


def check_config(
    config: str | Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    instance_path: str | Path | None = None,
) -> Checked:
    """The effective settings with warnings; raises ConfigurationError with every problem.

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
    overrides, problems, warnings = env_overrides(environ, declared_types())
    settings.update(overrides)
    settings.update(explicit)
    settings["ENV"] = profile
    base = Path(instance_path) if instance_path else Path.cwd() / "instance"
    if not settings.get("DATABASE_URL") and profile != "production":
        settings["DATABASE_URL"] = f"sqlite:///{base / 'aeohub.sqlite3'}"
    if not settings.get("IMPORT_DIR") and profile != "production":
        settings["IMPORT_DIR"] = str(base / "imports")
    for rule in RULES:
        problems.extend(rule(settings))
    if problems:
        raise ConfigurationError(problems)
    return Checked(settings, warnings)


def load_config(
    config: str | Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    instance_path: str | Path | None = None,
) -> dict[str, Any]:
    """The effective settings as a dict of upper-case keys (see `check_config`); warnings
    are logged."""
    checked = check_config(config, environ=environ, instance_path=instance_path)
    for warning in checked.warnings:
        logging.getLogger(__name__).warning("%s", warning)
    return checked.settings


# -- the rules ----------------------------------------------------------------------------

Rule = Callable[[Mapping[str, Any]], list[str]]


def _production(settings: Mapping[str, Any]) -> bool:
    return settings.get("ENV") == "production"


def _secret_key(settings: Mapping[str, Any]) -> list[str]:
    key = settings.get("SECRET_KEY")
    if not isinstance(key, str) or not key:
        return ["AEOHUB_SECRET_KEY: must be set (`aeohub keys generate` prints one)"]
    if _production(settings):
        if key == default_config.DEFAULT_SECRET_KEY:
            return ["AEOHUB_SECRET_KEY: refusing to start in production with the default "
                    "secret key (`aeohub keys generate` prints a new one)"]
        if len(key) < MIN_SECRET_KEY_LENGTH:
            return [f"AEOHUB_SECRET_KEY: at least {MIN_SECRET_KEY_LENGTH} characters in "
                    f"production, not {len(key)}"]
    return []


def _metrics_token(settings: Mapping[str, Any]) -> list[str]:
    token = settings.get("METRICS_TOKEN")
    if token and len(str(token)) < MIN_SECRET_KEY_LENGTH:
        return [f"AEOHUB_METRICS_TOKEN: at least {MIN_SECRET_KEY_LENGTH} characters, not "
                f"{len(str(token))}"]
    return []


def _encryption_key(settings: Mapping[str, Any]) -> list[str]:
    key = settings.get("ENCRYPTION_KEY")
    if not key:
        if _production(settings):
            return ["AEOHUB_ENCRYPTION_KEY: must be set in production (it encrypts connection "
                    "secrets at rest; `aeohub keys generate` prints one)"]
        return []

    try:
        Fernet(key)
    except (ValueError, TypeError):
        return ["AEOHUB_ENCRYPTION_KEY: not a Fernet key (url-safe base64 of 32 bytes)"]
    return []


def _audit_signing_key(settings: Mapping[str, Any]) -> list[str]:
    key = settings.get("AUDIT_SIGNING_KEY")
    if not key:
        if _production(settings):
            return ["AEOHUB_AUDIT_SIGNING_KEY: must be set in production (it signs the audit "
                    "chain's head; `aeohub keys generate` prints one)"]
        return []

    try:
        parse_key(str(key))
    except ValueError as exc:
        return [f"AEOHUB_AUDIT_SIGNING_KEY: {str(exc).removeprefix('AUDIT_SIGNING_KEY ')}"]
    return []


def _issuer(settings: Mapping[str, Any]) -> list[str]:
    issuer = settings.get("ISSUER")
    if not issuer:
        if _production(settings):
            return ["AEOHUB_ISSUER: must be set in production: the hub's public https base "
                    "URL (the OAuth issuer; never taken from the Host header)"]
        return []
    parts = urlsplit(str(issuer))
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
            or parts.fragment:
        return ["AEOHUB_ISSUER: expected an absolute http(s) URL without query or fragment, "
                "such as https://aeohub.example.org"]
    if _production(settings) and parts.scheme != "https":
        return ["AEOHUB_ISSUER: must be an https URL in production"]
    return []


def _database_url(settings: Mapping[str, Any]) -> list[str]:
    url = settings.get("DATABASE_URL")
    if not url:
        return ["AEOHUB_DATABASE_URL: must be set in production (a PostgreSQL URL such as "
                "postgresql+psycopg://user@host/db)"]

    try:
        parsed = make_url(str(url))
    except ArgumentError:
        return ["AEOHUB_DATABASE_URL: not a database URL (postgresql+psycopg://user@host/db "
                "or sqlite:///path)"]
    if parsed.get_backend_name() not in ("postgresql", "sqlite"):
        return [f"AEOHUB_DATABASE_URL: the hub runs on PostgreSQL or SQLite, not "
                f"{parsed.get_backend_name()}"]
    return []


def host_rule_problem(entry: Any) -> str | None:
    """Why `entry` is not a host rule (a host name, an IP address or a network), or None."""
    if not isinstance(entry, str) or not entry.strip():
        return f"{entry!r} is not a host name, address or network"
    text = entry.strip()
    try:
        ipaddress.ip_network(text, strict=False)
        return None
    except ValueError:
        pass
    labels = text.rstrip(".").split(".")
    if all(label and len(label) <= 63 and label.replace("-", "").isalnum()
           and not label.startswith("-") for label in labels) and len(text) <= 253:
        return None
    return f"{entry!r} is not a host name, address or network"


def _host_rules(settings: Mapping[str, Any]) -> list[str]:
    problems = []
    for name in ("NODE_HOSTS_ALLOWED", "WEBHOOK_HOSTS_ALLOWED"):
        value = settings.get(name)
        if value is None and name == "WEBHOOK_HOSTS_ALLOWED":
            continue
        if not isinstance(value, list | tuple):
            problems.append(f"AEOHUB_{name}: expected a list of hosts")
            continue
        problems.extend(f"AEOHUB_{name}: {why}" for why in map(host_rule_problem, value)
                        if why)
    return problems


def _private_networks(settings: Mapping[str, Any]) -> list[str]:
    problems = []
    for entry in settings.get("WEBHOOK_PRIVATE_NETWORKS_ALLOWED") or ():
        try:
            ipaddress.ip_network(str(entry), strict=False)
        except ValueError:
            problems.append(f"AEOHUB_WEBHOOK_PRIVATE_NETWORKS_ALLOWED: {entry!r} is not a "
                            "network (such as 10.20.0.0/16)")
    return problems


def _numbers(settings: Mapping[str, Any]) -> list[str]:
    """Counts and durations: never negative (a value the code would divide by or wait)."""
    problems = []
    for name, kind in declared_types().items():
        value = settings.get(name)
        if kind in (int, float) and isinstance(value, int | float) \
                and not isinstance(value, bool) and value < 0:
            problems.append(f"AEOHUB_{name}: must not be negative")
    workers = settings.get("SCHEDULER_WORKERS")
    if isinstance(workers, int) and not 1 <= workers <= MAX_SCHEDULER_WORKERS:
        problems.append(f"AEOHUB_SCHEDULER_WORKERS: must be 1 to {MAX_SCHEDULER_WORKERS} "
                        "(threads of the scheduler process)")
    return problems


RULES: list[Rule] = [_secret_key, _metrics_token, _encryption_key, _audit_signing_key, _issuer,
                     _database_url, _host_rules, _private_networks, _numbers]
