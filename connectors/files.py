"""Where the file connectors (CSV, XML) read from: a local path or a URL, streamed.

A path must resolve (symlinks followed) inside the connection's import directory; a URL
is fetched through `connectors.transport.HttpClient` (checked hosts and redirect hops,
retries, optional bearer token) and read as a stream, never loaded whole.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import IO, Any

import requests
from marshmallow import ValidationError, fields, validate, validates_schema

from connectors.base import (
    AuthenticationFailed,
    CheckResult,
    ConnectorContext,
    ConnectorError,
    FormatError,
    SourceUnavailable,
)
from connectors.formats import CANONICAL_COLUMNS
from connectors.mapping import MappingConfig
from connectors.transport import HttpClient, RetryPolicy

__all__ = ["FieldMapping", "FileSourceConfig", "RecordSettings", "check_encoding", "open_binary",
           "snapshot_identity", "source_label"]


class RecordSettings(MappingConfig):
    """Settings of every connector that builds records from rows: the programme and
    scheme of rows that name none, date formats, batch size and the value mapping."""

    programme = fields.String(
        load_default=None, allow_none=True,
        metadata={"description": "Programme code for rows that do not name one"},
    )
    trader_id_scheme = fields.String(
        load_default=None, allow_none=True,
        metadata={"description": "Identifier scheme for rows that do not name one (EORI, ...)"},
    )
    date_formats = fields.List(
        fields.String(validate=validate.Length(min=2)), load_default=lambda: ["%Y-%m-%d"],
        validate=validate.Length(min=1),
        metadata={"description": "strptime formats dates may be written in, tried in order"},
    )
    batch_size = fields.Integer(
        load_default=2000, validate=validate.Range(min=1, max=100_000),
        metadata={"description": "Records per batch"},
    )


class FileSourceConfig(RecordSettings):
    """Config shared by file snapshot connectors; exactly one of ``path`` and ``url``."""

    path = fields.String(
        load_default=None, allow_none=True,
        metadata={"description": "File path (inside the hub's import directory)"},
    )
    url = fields.Url(
        load_default=None, allow_none=True, schemes={"http", "https"}, require_tld=False,
        metadata={"description": "URL the file is published at"},
    )
    token = fields.String(
        load_default=None, allow_none=True,
        metadata={"secret": True, "description": "Bearer token sent with the URL request"},
    )
    headers = fields.Dict(
        keys=fields.String(), values=fields.String(), load_default=dict,
        metadata={"secret": True, "description": "Extra HTTP headers for the URL request"},
    )
    timeout = fields.Float(
        load_default=30.0, validate=validate.Range(min=0.05, max=3600),
        metadata={"description": "Seconds to wait for the server (URL only)"},
    )
    max_retries = fields.Integer(
        load_default=3, validate=validate.Range(min=0, max=50),
        metadata={"description": "Retries of the request on 5xx, 429 and timeouts"},
    )
    backoff_base = fields.Float(
        load_default=0.5, validate=validate.Range(min=0, max=60),
        metadata={"description": "Back-off base in seconds"},
    )
    verify_tls = fields.Boolean(load_default=True, metadata={"description": "Verify TLS"})

    @validates_schema
    def _one_source(self, data: Mapping[str, Any], **_kwargs: Any) -> None:
        if bool(data.get("path")) == bool(data.get("url")):
            message = "Give exactly one of path and url."
            raise ValidationError({"path": [message], "url": [message]})


class FieldMapping(fields.Dict):
    """canonical field -> source column/element name (``null``: do not read the field)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            keys=fields.String(validate=validate.OneOf(CANONICAL_COLUMNS)),
            values=fields.String(allow_none=True),
            load_default=dict,
            **kwargs,
        )


def check_encoding(value: str) -> None:
    """Marshmallow validator: ``value`` names a text codec Python knows."""
    try:
        codecs.lookup(value)
    except LookupError as exc:
        raise ValidationError(f"Unknown encoding {value!r}.") from exc


def check_failure(exc: ConnectorError) -> CheckResult:
    """What a failed probe of a file source tells a person: refused credentials, the wrong
    format, or a source that could not be reached (unavailable, not allowed, anything else)."""
    if isinstance(exc, AuthenticationFailed):
        return CheckResult(reachable=True, authenticated=False, reason=str(exc))
    if isinstance(exc, FormatError):
        return CheckResult(reachable=True, format_ok=False, reason=str(exc))
    return CheckResult(reachable=False, reason=str(exc))


def source_label(config: Mapping[str, Any]) -> str:
    """The configured source, for messages (a URL's query is left out: it may hold keys)."""
    if config.get("path"):
        return str(config["path"])
    url = str(config.get("url") or "")
    return url.split("?", 1)[0]


def snapshot_identity(config: Mapping[str, Any], context: ConnectorContext) -> str | None:
    """A local file's size and modification time, which change when the file is
    replaced (`Discovery.snapshot_id`); None for a URL (a download cannot be resumed
    over a file that may have changed, so an interrupted one starts again)."""
    if not config.get("path"):
        return None
    try:
        stat = context.check_path(config["path"]).stat()
    except OSError:
        return None
    return f"file:{stat.st_size}:{stat.st_mtime_ns}"


@contextmanager
def open_binary(
    config: Mapping[str, Any], context: ConnectorContext, *, accept: str | None = None
) -> Iterator[IO[bytes]]:
    """Open the configured path or URL as a buffered binary stream; closes it afterwards."""
    if config.get("path"):
        path = context.check_path(config["path"])
        try:
            handle = open(path, "rb", buffering=65536)  # noqa: SIM115 - closed below
        except OSError as exc:
            raise SourceUnavailable(f"cannot open {config['path']!r}: {exc.strerror}") from exc
        with handle:
            yield handle
        return
    client = HttpClient(
        context,
        token=config.get("token"),
        timeout=config["timeout"],
        retry=RetryPolicy(max_retries=config["max_retries"], backoff_base=config["backoff_base"]),
        verify_tls=config["verify_tls"],
        headers=config.get("headers") or {},
    )
    with client:
        client.bind_token(config["url"])
        response = client.get(config["url"], stream=True, accept=accept)
        try:
            response.raw.decode_content = True
            stream = io.BufferedReader(_RawResponse(response), buffer_size=65536)
            yield stream
        except requests.exceptions.RequestException as exc:
            raise SourceUnavailable(
                f"the download of {source_label(config)} broke off ({type(exc).__name__})"
            ) from exc
        finally:
            response.close()


class _RawResponse(io.RawIOBase):
    """A requests response body as a raw stream (content decoding applied)."""

    def __init__(self, response: requests.Response) -> None:
        self._response = response

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._response.raw.read(len(buffer))
        except Exception as exc:  # urllib3 errors: the body was cut short
            raise SourceUnavailable(
                f"the download broke off ({type(exc).__name__})"
            ) from exc
        n = len(data)
        buffer[:n] = data
        return n
