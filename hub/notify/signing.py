"""Webhook signatures: HMAC-SHA256 over `<timestamp>.<body>` with the subscription's secret.

Every delivery carries `AEOHub-Signature: t=<unix seconds>,v1=<hex digest>`, where the
digest is HMAC-SHA256 (key: the subscription's secret, UTF-8) of the ASCII timestamp, a
dot, and the exact request body bytes. A receiver recomputes it, compares in constant
time, and refuses a timestamp older than its tolerance, so a captured delivery cannot be
replayed later. Several `v1=` values may appear while a secret is being rotated; any one
matching is enough.

This module uses the standard library only, so receivers can copy it as it is.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

SIGNATURE_HEADER = "AEOHub-Signature"
EVENT_ID_HEADER = "AEOHub-Event-Id"
EVENT_TYPE_HEADER = "AEOHub-Event-Type"
SCHEME = "v1"
DEFAULT_TOLERANCE = 300


class SignatureError(ValueError):
    """A delivery whose signature is missing, malformed, wrong or too old."""


def digest(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `<timestamp>.<body>` under `secret`."""
    message = str(int(timestamp)).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The `AEOHub-Signature` value for `body` signed now (or at `timestamp`)."""
    stamp = int(time.time() if timestamp is None else timestamp)
    return f"t={stamp},{SCHEME}={digest(secret, stamp, body)}"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, item in headers.items():
        if key.lower() == wanted:
            return item
    return None


def parse(value: str) -> tuple[int, list[str]]:
    """(timestamp, [v1 digests]) from a signature header; raises `SignatureError`."""
    stamp: int | None = None
    digests: list[str] = []
    for part in value.split(","):
        key, _, item = part.strip().partition("=")
        if key == "t":
            try:
                stamp = int(item)
            except ValueError as exc:
                raise SignatureError("the signature's timestamp is not a number") from exc
        elif key == SCHEME and item:
            digests.append(item)
    if stamp is None or not digests:
        raise SignatureError("the signature header needs t=<unix time> and v1=<hex>")
    return stamp, digests


def verify(secret: str, headers: Mapping[str, str], body: bytes,
           tolerance: int = DEFAULT_TOLERANCE, *, now: float | None = None) -> int:
    """Check a delivery; return its timestamp, or raise `SignatureError` saying why.

    `headers` is any mapping of the request's headers (looked up case-insensitively) and
    `body` the raw request body, before any JSON parsing.
    """
    value = _header(headers, SIGNATURE_HEADER)
    if not value:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    stamp, digests = parse(value)
    current = time.time() if now is None else now
    if abs(current - stamp) > tolerance:
        raise SignatureError(f"the signature's timestamp is {int(current - stamp)} s away "
                             f"from now (tolerance {tolerance} s): refused as a replay")
    expected = digest(secret, stamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in digests):
        raise SignatureError("the signature does not match the body")
    return stamp
