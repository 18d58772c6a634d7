"""Cursors: positions in a list or feed that a client continues from.

Partners get `sign_cursor`'s cursors, signed and bound to the client and the query they
continue (`read_cursor` refuses any other). The hub's own records (a webhook
subscription's place in the change feed) keep `encode_cursor`'s plain positions.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer

from hub.auth.guard import current_principal
from hub.db import MAX_ID
from hub.errors import InvalidInput
from hub.jsonio import iso


def encode_cursor(data: Mapping[str, int]) -> str:
    """A feed position as text, for the hub's own records (a webhook subscription's place
    in the feed). Partners get `sign_cursor`'s cursors, never these."""
    raw = json.dumps(dict(data), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, keys: Sequence[str]) -> dict[str, int]:
    """The position `encode_cursor` wrote (zeros for none)."""
    if not cursor:
        return dict.fromkeys(keys, 0)
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise InvalidInput("the cursor is not one the hub issued",
                           fields={"cursor": "malformed"}) from exc
    return _position(data, keys)


def _position(data: Any, keys: Sequence[str]) -> dict[str, int]:
    """The whole numbers of a position, each between 0 and MAX_ID."""
    if not isinstance(data, Mapping):
        raise InvalidInput("the cursor is not one the hub issued",
                           fields={"cursor": "malformed"})
    position = {}
    for key in keys:
        value = data.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ID:
            raise InvalidInput("the cursor is not one the hub issued",
                               fields={"cursor": "out of range"})
        position[key] = value
    return position


#: Partners' cursors are signed (itsdangerous, with the app's secret key; the earlier keys
#: of SECRET_KEY_FALLBACKS still verify, so cursors survive a key rotation) and carry the
#: client and a digest of the query they continue: a forged cursor, another client's or
#: another query's is refused. They never expire: a feed can be resumed any time later.
CURSOR_SALT = "aeohub.cursor"


def _cursor_serializer() -> URLSafeSerializer:
    config = current_app.config
    keys = [*(config.get("SECRET_KEY_FALLBACKS") or ()), config["SECRET_KEY"]]
    return URLSafeSerializer(keys, salt=CURSOR_SALT)  # signs with the last key


def _binding(query: Mapping[str, Any]) -> tuple[str, str]:
    """The calling client, and a digest of the query a cursor continues."""
    # The same instant is the same query, whatever offset it was written with.
    text = json.dumps(sorted((k, iso(v.astimezone(dt.UTC) if isinstance(v, dt.datetime)
                                      else v)) for k, v in query.items()), default=str)
    return current_principal().client_id, hashlib.sha256(text.encode()).hexdigest()[:32]


def sign_cursor(position: Mapping[str, int], query: Mapping[str, Any]) -> str:
    """The cursor a partner gets for `position` in the results of `query`."""
    client_id, digest = _binding(query)
    return _cursor_serializer().dumps({"p": dict(position), "c": client_id, "q": digest})


def read_cursor(cursor: str | None, keys: Sequence[str], query: Mapping[str, Any]
                ) -> dict[str, int]:
    """The position of a partner's cursor for `query` (zeros for none); 400 naming the
    `cursor` parameter when it is forged, malformed, another client's or query's."""
    if not cursor:
        return dict.fromkeys(keys, 0)
    try:
        data = _cursor_serializer().loads(cursor)
    except BadSignature as exc:
        raise InvalidInput("the cursor is not one the hub issued",
                           fields={"cursor": "not issued by the hub"}) from exc
    client_id, digest = _binding(query)
    if not isinstance(data, dict) or data.get("c") != client_id or data.get("q") != digest:
        raise InvalidInput("the cursor was issued for another client or another query",
                           fields={"cursor": "not for this client and query"})
    return _position(data.get("p"), keys)
