"""How an audit entry is hashed: a canonical JSON of its fields plus the previous hash.

The canonical form is JSON with sorted keys, no insignificant whitespace and UTF-8
text (`ensure_ascii=False`), over exactly these fields:

    {"action", "actor", "administrations" (sorted codes), "details", "prev_hash",
     "recorded_at" (UTC, "YYYY-MM-DDTHH:MM:SS.ffffffZ"), "seq", "subject"}

`hash = sha256(canonical).hexdigest()`. The first entry's `prev_hash` is `GENESIS_HASH`
(64 zeros). Anyone holding an export can recompute an entry's hash with these rules.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

GENESIS_HASH = "0" * 64
HASH_ALGORITHM = "sha256"


def format_time(value: dt.datetime) -> str:
    """A UTC timestamp with microseconds, the form hashed and exported."""
    if value.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


#: Exactly these types are kept as they are (subclasses are converted by `_plain`).
_AS_IS = frozenset({str, int, bool, type(None)})


def _plain(value: Any) -> Any:
    """JSON types only, and exactly those types (no subclasses): dates as ISO text, tuples
    and sets as lists, Decimals as text; a float must be finite."""
    kind = type(value)
    if kind in _AS_IS:
        return value
    # Plain dicts and lists (a buffered read entry holds thousands) without a call per
    # key or plain item.
    if kind is dict:
        return {k if type(k) is str else str(k): v if type(v) in _AS_IS else _plain(v)
                for k, v in value.items()}
    if kind is list:
        return [v if type(v) in _AS_IS else _plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted((_plain(v) for v in value), key=repr)
    if isinstance(value, dt.datetime):
        return format_time(value) if value.tzinfo else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):  # an IntEnum, say: stored and hashed as its number
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"audit details cannot hold {value!r}")
        return float(value)
    if isinstance(value, str):  # a StrEnum, say: stored and hashed as its text
        return str(value)
    return str(value)


def normalise_details(details: Mapping[str, Any] | None) -> dict[str, Any]:
    """The details as they will be stored: plain JSON that reads back identically
    (exact JSON types, finite floats: what `json.loads(json.dumps(...))` gives back)."""
    plain: dict[str, Any] = _plain(dict(details or {}))
    return plain


def canonical(*, seq: int, recorded_at: dt.datetime, actor: str, action: str,
              administrations: Iterable[str], subject: str | None,
              details: Mapping[str, Any], prev_hash: str) -> bytes:
    """The bytes an entry's hash covers."""
    body = {
        "action": action,
        "actor": actor,
        "administrations": sorted(set(administrations)),
        "details": details,
        "prev_hash": prev_hash,
        "recorded_at": format_time(recorded_at),
        "seq": seq,
        "subject": subject,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def entry_hash(**fields: Any) -> str:
    """SHA-256 (hex) of the canonical form of an entry; takes the fields of `canonical`."""
    return hashlib.sha256(canonical(**fields)).hexdigest()
