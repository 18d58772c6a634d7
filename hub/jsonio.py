"""The app's JSON: orjson behind Flask's JSON provider interface.

A 10,000-reference batch answer is about 8 MB of JSON; the standard library encodes it
in about a tenth of a second, orjson in a hundredth. Output stays what Flask's default
provider gives for the types the hub returns: dates and times go through Flask's
`default` (HTTP dates, as before), keys keep their built order unless `sort_keys` is set,
non-string keys are written as strings, and integers beyond 64 bits fall back to the
standard library. Text is written as UTF-8 rather than
`\\u` escapes (both are JSON; the answer's charset is UTF-8).

Requests are parsed with orjson too (`request.get_json()` uses the provider).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import orjson
from flask import Flask
from flask.json.provider import DefaultJSONProvider

if TYPE_CHECKING:
    from werkzeug.sansio.response import Response

_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_NON_STR_KEYS


def iso(value: Any) -> Any:
    """A date or time as ISO 8601 text (what the API's records carry); anything else,
    None included, as it is."""
    return value.isoformat() if isinstance(value, dt.date | dt.datetime) else value


class OrjsonProvider(DefaultJSONProvider):
    """Flask's default provider with orjson doing the encoding and decoding."""

    sort_keys = False

    def _encode(self, obj: Any) -> bytes:
        options = _OPTIONS | (orjson.OPT_SORT_KEYS if self.sort_keys else 0)
        try:
            return orjson.dumps(obj, default=self.default, option=options)
        except TypeError:
            # What orjson does not write (integers beyond 64 bits) the standard library
            # does; what neither can write raises from there.
            return super().dumps(obj).encode()

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        if kwargs:  # a caller asking for the standard library's options gets them
            return super().dumps(obj, **kwargs)
        return self._encode(obj).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        if kwargs:
            return super().loads(s, **kwargs)
        return orjson.loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        obj = self._prepare_response_obj(args, kwargs)
        if self._app.debug:  # indented, as Flask's default provider does in debug mode
            return super().response(obj)
        body: Any = self._encode(obj) + b"\n"  # a WSGI response takes bytes as well
        response: Response = self._app.response_class(body, mimetype=self.mimetype)
        return response


# What orjson refuses to write (a lone surrogate in a string, an integer beyond 64 bits)
# the standard library writes, after one space (JSON allows it): `unpack` then reads that
# text with the standard library too, where orjson would read such an integer as a float.
_FALLBACK_MARK = " "
# The database's JSON columns: what the standard library refuses (dates, dataclasses),
# orjson refuses too.
_TEXT_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _dumps(value: Any, option: int) -> bytes:
    try:
        return orjson.dumps(value, option=option)
    except orjson.JSONEncodeError:
        return (_FALLBACK_MARK + json.dumps(value)).encode()


def dumps_text(value: Any) -> str:
    """The JSON text the database's JSON columns store (the engine's `json_serializer`,
    and the sync's bulk path): orjson's compact UTF-8 form, or the standard library's
    after one space for what orjson refuses; what neither writes raises `TypeError`.
    Not-a-number and the infinities, which JSON has no form for (PostgreSQL refuses the
    standard library's `NaN`), are written as `null`."""
    return _dumps(value, _TEXT_OPTIONS).decode()


def pack(value: Any) -> bytes:
    """`value` as JSON bytes: orjson's encoding (dates and aware timestamps in ISO form),
    or the standard library's after one space for what orjson refuses."""
    return _dumps(value, 0)


def unpack(text: str | bytes) -> Any:
    """JSON text read by orjson, or by the standard library where the text was written by
    it (`pack`, `dumps_text`) or orjson refuses it."""
    if text[:1] in (" ", b" "):
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def init_app(app: Flask) -> None:
    """Answers keep the order the code builds them in (`sort_keys` False)."""
    app.json = OrjsonProvider(app)
