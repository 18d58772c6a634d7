"""Finding connectors: the entry-point group ``aeohub.connectors``.

Built-ins are declared in ``setup.cfg`` like any plugin; a third party adds a connector by
installing a distribution with an entry point in the same group. A plugin that fails to
import, or is not a `Connector` subclass, is logged on the ``connectors`` logger and
skipped: one broken plugin never takes the hub down. The built-ins are also known by
their import paths, so a source checkout that is not installed still finds them.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

import marshmallow
from marshmallow import fields, validate

from connectors.base import (
    LOGGER_NAME,
    ConfigError,
    Connector,
    ConnectorContext,
    load_config,
)

__all__ = [
    "BUILTIN_CONNECTORS",
    "ENTRY_POINT_GROUP",
    "available_connectors",
    "build_connector",
    "config_json_schema",
]

ENTRY_POINT_GROUP = "aeohub.connectors"

#: name -> "module:Class" of the connectors shipped with the hub.
BUILTIN_CONNECTORS: dict[str, str] = {
    "aeo_node": "connectors.aeo_node:AeoNodeConnector",
    "csv_snapshot": "connectors.csv_snapshot:CsvSnapshotConnector",
    "xml_snapshot": "connectors.xml_snapshot:XmlSnapshotConnector",
    "xlsx_snapshot": "connectors.xlsx_snapshot:XlsxSnapshotConnector",
    "sql_query": "connectors.sql_query:SqlQueryConnector",
}

log = logging.getLogger(LOGGER_NAME)


def _accept(name: str, target: str, obj: Any) -> type[Connector] | None:
    if not (isinstance(obj, type) and issubclass(obj, Connector)):
        log.warning(
            "connector plugin %r (%s) is not a Connector subclass; skipped", name, target
        )
        return None
    if getattr(obj, "__abstractmethods__", None):
        log.warning(
            "connector plugin %r (%s) does not implement %s; skipped", name, target,
            ", ".join(sorted(obj.__abstractmethods__)),
        )
        return None
    return obj


def available_connectors() -> dict[str, type[Connector]]:
    """name -> connector class, for every plugin that loads (built-ins included)."""
    found: dict[str, type[Connector]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found:
            continue  # the same distribution seen twice on sys.path: first one wins
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must never be fatal
            log.warning(
                "connector plugin %r (%s) failed to import: %s: %s; skipped",
                ep.name, ep.value, type(exc).__name__, exc,
            )
            continue
        cls = _accept(ep.name, ep.value, obj)
        if cls is not None:
            found[ep.name] = cls
    for name, target in BUILTIN_CONNECTORS.items():
        if name in found:
            continue
        module_name, _, attr = target.partition(":")
        try:
            obj = getattr(importlib.import_module(module_name), attr)
        except Exception as exc:
            log.warning("built-in connector %r failed to import: %s", name, exc)
            continue
        cls = _accept(name, target, obj)
        if cls is not None:
            found[name] = cls
    return dict(sorted(found.items()))


def build_connector(
    name: str, config: Mapping[str, Any], context: ConnectorContext | None = None
) -> Connector:
    """Validate ``config`` with the connector's schema, then construct the connector.

    Raises `ConfigError` (``fields`` names each bad field) for an invalid config or an
    unknown connector name (``fields == {"connector": [...]}``).
    """
    connectors = available_connectors()
    cls = connectors.get(name)
    if cls is None:
        known = ", ".join(connectors) or "none"
        raise ConfigError(
            f"no connector named {name!r} (available: {known})",
            {"connector": [f"Unknown connector {name!r}; available: {known}."]},
        )
    load_config(cls, config)  # raises ConfigError naming the fields, before any I/O
    return cls(config, context)


_FIELD_TYPES: tuple[tuple[type[fields.Field], dict[str, Any]], ...] = (
    (fields.Url, {"type": "string", "format": "uri"}),
    (fields.Email, {"type": "string", "format": "email"}),
    (fields.DateTime, {"type": "string", "format": "date-time"}),
    (fields.Date, {"type": "string", "format": "date"}),
    (fields.String, {"type": "string"}),
    (fields.Boolean, {"type": "boolean"}),
    (fields.Integer, {"type": "integer"}),
    (fields.Float, {"type": "number"}),
    (fields.Number, {"type": "number"}),
    (fields.Dict, {"type": "object"}),
    (fields.Mapping, {"type": "object"}),
    (fields.List, {"type": "array"}),
    (fields.Nested, {"type": "object"}),
)


def _field_schema(fld: fields.Field) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind, shape in _FIELD_TYPES:
        if isinstance(fld, kind):
            out.update(shape)
            break
    else:
        out["type"] = "string"
    if isinstance(fld, fields.List):
        out["items"] = _field_schema(fld.inner)
    if isinstance(fld, fields.Dict) and fld.value_field is not None:
        out["additionalProperties"] = _field_schema(fld.value_field)
    if fld.allow_none and "type" in out:
        out["type"] = [out["type"], "null"]
    validators = list(fld.validators)
    for v in validators:
        if isinstance(v, validate.OneOf):
            out["enum"] = list(v.choices)
        elif isinstance(v, validate.Range):
            if v.min is not None:
                out["minimum"] = v.min
            if v.max is not None:
                out["maximum"] = v.max
        elif isinstance(v, validate.Length):
            key = "Items" if isinstance(fld, fields.List) else "Length"
            if v.equal is not None:
                out[f"min{key}"] = out[f"max{key}"] = v.equal
            else:
                if v.min is not None:
                    out[f"min{key}"] = v.min
                if v.max is not None:
                    out[f"max{key}"] = v.max
    default = fld.load_default
    if callable(default):
        default = default()
    if default is not marshmallow.missing and default is not None:
        out["default"] = default
    description = fld.metadata.get("description")
    if description:
        out["description"] = description
    if fld.metadata.get("secret"):
        out["secret"] = True
        out["writeOnly"] = True
    return out


def config_json_schema(cls: type[Connector]) -> dict[str, Any]:
    """A JSON-Schema-like description of ``cls``'s config, for the CLI and the UI.

    Each property has its JSON type, default, description, enum/bounds when declared, and
    ``"secret": true`` for secret fields (never echo their values).
    """
    schema = cls.config_schema()
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, fld in schema.fields.items():
        if fld.load_only is False and fld.dump_only:
            continue
        key = fld.data_key or name
        properties[key] = _field_schema(fld)
        if fld.required:
            required.append(key)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": cls.title,
        "x-connector": cls.name,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }
