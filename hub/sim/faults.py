"""Faults a simulated node can inject, settable at start and at run time.

`Faults.parse` accepts a `Faults`, a mapping, a JSON object string or a comma list such as
``latency_ms=200,error_rate=0.1,truncate,broken_protocol=no_trailer+cursor_stuck``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: Deliberate protocol breaches `broken_protocol` can switch on (`true` = all of them).
BREACHES = ("missing_fields", "cursor_stuck", "no_trailer", "ignore_limit", "no_auth")

#: How malformed rows are broken, in rotation.
MALFORMATIONS = ("bad_date", "invalid_identifier", "unknown_status", "missing_name")


class FaultError(ValueError):
    """An unknown fault or a bad fault value."""


@dataclass
class Faults:
    """The node's current faults; all off by default."""

    latency_ms: int = 0  # delay before every /aeo/v1 answer
    error_rate: float = 0.0  # share of /aeo/v1 requests answered 500/502/503
    fail_next: int = 0  # the next N /aeo/v1 requests get 503
    rate_limit: int = 0  # max /aeo/v1 requests per second; beyond: 429 + Retry-After
    retry_after: int = 1  # seconds announced in Retry-After
    truncate: bool = False  # data bodies cut mid-way (Content-Length promises more)
    malformed_rate: float = 0.0  # share of records with a broken field
    duplicate_ids: int = 0  # N pairs of records sharing a trader_id
    empty: bool = False  # the feed serves no records at all
    broken_protocol: tuple[str, ...] = field(default_factory=tuple)  # see BREACHES

    @classmethod
    def parse(cls, value: Faults | Mapping[str, Any] | str | None) -> Faults:
        """Faults from any accepted form."""
        if value is None:
            return cls()
        if isinstance(value, Faults):
            return dataclasses.replace(value)
        faults = cls()
        faults.update(_as_mapping(value))
        return faults

    def update(self, values: Mapping[str, Any]) -> None:
        """Change the named faults (others keep their values); FaultError when invalid."""
        names = {f.name: f for f in dataclasses.fields(self)}
        for name, raw in values.items():
            if name not in names:
                raise FaultError(f"unknown fault {name!r}; expected one of {', '.join(names)}")
            setattr(self, name, _coerce(name, raw))

    def breach(self, name: str) -> bool:
        """True when protocol breach `name` is on."""
        return name in self.broken_protocol

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        data = dataclasses.asdict(self)
        data["broken_protocol"] = list(self.broken_protocol)
        return data


def _as_mapping(value: Mapping[str, Any] | str) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    text = value.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FaultError(f"faults JSON is not valid: {exc}") from exc
        if not isinstance(parsed, dict):
            raise FaultError("faults JSON must be an object")
        return parsed
    out: dict[str, Any] = {}
    for item in text.split(","):
        name, _, raw = item.strip().partition("=")
        out[name.strip()] = raw.strip() if raw else True
    return out


def _coerce(name: str, raw: Any) -> Any:
    try:
        if name == "broken_protocol":
            if raw is True or raw in ("true", "all", "1"):
                return BREACHES
            if raw in (False, None, "", "false", "0"):
                return ()
            items = raw.replace("+", ",").split(",") if isinstance(raw, str) else list(raw)
            items = [str(item).strip() for item in items if str(item).strip()]
            unknown = [item for item in items if item not in BREACHES]
            if unknown:
                raise FaultError(f"unknown protocol breach {unknown[0]!r}; "
                                 f"expected some of {', '.join(BREACHES)}")
            return tuple(items)
        if name in ("truncate", "empty"):
            if isinstance(raw, str):
                return raw.lower() in ("1", "true", "yes", "on")
            return bool(raw)
        if name in ("error_rate", "malformed_rate"):
            rate = float(raw)
            if not 0.0 <= rate <= 1.0:
                raise FaultError(f"{name} must be between 0 and 1")
            return rate
        number = int(raw)
        if number < 0:
            raise FaultError(f"{name} must not be negative")
        return number
    except (TypeError, ValueError) as exc:
        if isinstance(exc, FaultError):
            raise
        raise FaultError(f"bad value {raw!r} for fault {name}") from exc
