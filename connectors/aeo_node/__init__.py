"""``aeo_node``: reads a node that speaks the hub's node protocol (``aeo-node/1``).

The protocol is specified in ``node-protocol.yaml`` beside this file (OpenAPI 3.1):
``GET /aeo/v1/info``, the paged incremental feed ``GET /aeo/v1/operators?since=&limit=``
and the full snapshot ``GET /aeo/v1/operators.ndjson`` ending with a completeness trailer.

Two modes: ``incremental`` (default) pages through the feed from the saved cursor, one
batch per page with state ``{"cursor": next_cursor}``, and stops when the node says the
client has caught up; ``snapshot`` streams the NDJSON snapshot in batches of
``page_size`` with state ``{"offset": records_done}`` and refuses a body without its
trailer. HTTP behaviour (retries, 429, rate cap, redirects) is `connectors.transport`'s.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from importlib import resources
from typing import Any

import requests
from marshmallow import Schema, fields, validate

from connectors.base import (
    AccessDenied,
    AuthenticationFailed,
    Batch,
    CanonicalRecord,
    CategoryEntry,
    CheckResult,
    Connector,
    ConnectorError,
    Deletion,
    Discovery,
    FormatError,
    IdentifierEntry,
    ProgrammeInfo,
    SourceUnavailable,
)
from connectors.formats import as_bool, fingerprint_json
from connectors.transport import HttpClient, RetryPolicy

__all__ = [
    "PROTOCOL",
    "AeoNodeConfig",
    "AeoNodeConnector",
    "deletion_from_json",
    "protocol_document_text",
    "record_from_json",
]

#: The protocol identifier a node announces in ``/aeo/v1/info``.
PROTOCOL = "aeo-node/1"
INFO_PATH = "/aeo/v1/info"
OPERATORS_PATH = "/aeo/v1/operators"
SNAPSHOT_PATH = "/aeo/v1/operators.ndjson"

_SCALARS = (
    "programme", "authorisation_number", "trader_id_scheme", "trader_id", "legal_name",
    "status", "status_effective", "authorised_on", "valid_from", "valid_until",
    "issuing_authority", "changed_at",
)
_ADDRESS = ("street", "city", "postcode", "region", "country")


def protocol_document_text() -> str:
    """The node protocol's OpenAPI document (YAML text), shipped as package data."""
    return resources.files(__name__).joinpath("node-protocol.yaml").read_text("utf-8")


class AeoNodeConfig(Schema):
    """Configuration of an ``aeo_node`` connection."""

    base_url = fields.Url(
        required=True, schemes={"http", "https"}, require_tld=False,
        metadata={"description": "Node root URL, e.g. https://aeo.customs.example"},
    )
    token = fields.String(
        load_default=None, allow_none=True,
        metadata={"secret": True, "description": "Bearer token the node issued to the hub"},
    )
    programme = fields.String(
        load_default=None, allow_none=True,
        metadata={"description": "Programme code to read (all the node serves if empty)"},
    )
    mode = fields.String(
        load_default="incremental", validate=validate.OneOf(["incremental", "snapshot"]),
        metadata={"description": "incremental: paged feed from a cursor; snapshot: NDJSON"},
    )
    page_size = fields.Integer(
        load_default=500, validate=validate.Range(min=1, max=5000),
        metadata={"description": "Records per request / per batch"},
    )
    timeout = fields.Float(
        load_default=10.0, validate=validate.Range(min=0.05, max=600),
        metadata={"description": "Seconds to wait for the node to answer"},
    )
    max_retries = fields.Integer(
        load_default=5, validate=validate.Range(min=0, max=50),
        metadata={"description": "Retries after a 5xx, 429, timeout or broken body"},
    )
    backoff_base = fields.Float(
        load_default=0.5, validate=validate.Range(min=0, max=60),
        metadata={"description": "Back-off base in seconds (exponential, full jitter)"},
    )
    backoff_cap = fields.Float(
        load_default=30.0, validate=validate.Range(min=0, max=3600),
        metadata={"description": "Longest single back-off in seconds"},
    )
    max_retry_after = fields.Float(
        load_default=120.0, validate=validate.Range(min=0, max=86400),
        metadata={"description": "Give up when a 429 asks to wait longer (seconds)"},
    )
    rate_limit = fields.Float(
        load_default=None, allow_none=True, validate=validate.Range(min=0.001),
        metadata={"description": "At most this many requests per second (none: no cap)"},
    )
    verify_tls = fields.Boolean(
        load_default=True, metadata={"description": "Verify the node's TLS certificate"},
    )


def _scalar(value: Any, name: str, where: str, problems: list[str]) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, bool | int | float):
        return str(value)
    problems.append(f"{where}: {name} is a JSON {type(value).__name__}, expected a string")
    return None


def record_from_json(obj: Any, position: str, raw: Any = None) -> CanonicalRecord:
    """A canonical record from the protocol's record JSON; format problems are carried."""
    fingerprint = fingerprint_json(obj if raw is None else raw)
    if not isinstance(obj, dict):
        return CanonicalRecord(
            fingerprint=fingerprint, position=position,
            problems=(f"{position}: record is a JSON {type(obj).__name__}, expected an object",),
        )
    problems: list[str] = []
    values: dict[str, Any] = {
        name: _scalar(obj.get(name), name, position, problems) for name in _SCALARS
    }
    address = obj.get("address")
    if address is None:
        address = {}
    elif not isinstance(address, dict):
        problems.append(f"{position}: address is not an object")
        address = {}
    for name in _ADDRESS:
        values[name] = _scalar(address.get(name), f"address.{name}", position, problems)

    categories: list[CategoryEntry] = []
    raw_categories = obj.get("categories") or []
    if not isinstance(raw_categories, list):
        problems.append(f"{position}: categories is not a list")
        raw_categories = []
    for i, item in enumerate(raw_categories, 1):
        if not isinstance(item, dict):
            problems.append(f"{position}: category {i} is not an object")
            continue
        categories.append(CategoryEntry(
            code=_scalar(item.get("code"), f"category {i} code", position, problems),
            status=_scalar(item.get("status"), f"category {i} status", position, problems),
            since=_scalar(item.get("since"), f"category {i} since", position, problems),
            tier=_scalar(item.get("tier"), f"category {i} tier", position, problems),
        ))

    identifiers: list[IdentifierEntry] = []
    raw_identifiers = obj.get("identifiers") or []
    if not isinstance(raw_identifiers, list):
        problems.append(f"{position}: identifiers is not a list")
        raw_identifiers = []
    for i, item in enumerate(raw_identifiers, 1):
        if not isinstance(item, dict):
            problems.append(f"{position}: identifier {i} is not an object")
            continue
        linked = as_bool(item.get("linked"))
        if not isinstance(linked, bool):
            if linked is not None:
                problems.append(f"{position}: identifier {i} linked is {linked!r}, not a boolean")
            linked = False
        identifiers.append(IdentifierEntry(
            scheme=_scalar(item.get("scheme"), f"identifier {i} scheme", position, problems),
            value=_scalar(item.get("value"), f"identifier {i} value", position, problems),
            linked=linked,
        ))

    consents: dict[str, bool | str | None] = {}
    for name in ("consent_share", "consent_publish"):
        value = obj.get(name)
        consents[name] = value if isinstance(value, bool) or value is None else as_bool(str(value))

    return CanonicalRecord(
        **values,
        categories=tuple(categories),
        identifiers=tuple(identifiers),
        consent_share=consents["consent_share"],
        consent_publish=consents["consent_publish"],
        fingerprint=fingerprint,
        position=position,
        problems=tuple(problems),
    )


def deletion_from_json(obj: Any, position: str, programme: str | None) -> Deletion:
    """A tombstone from the protocol's deletion JSON; raises `FormatError` if unusable."""
    if not isinstance(obj, dict):
        raise FormatError(
            f"{position}: deletion is a JSON {type(obj).__name__}, expected an object"
        )
    problems: list[str] = []
    values = {
        name: _scalar(obj.get(name), name, position, problems)
        for name in ("programme", "trader_id_scheme", "trader_id", "authorisation_number",
                     "deleted_at")
    }
    missing = [name for name in ("trader_id_scheme", "trader_id") if not values[name]]
    if problems or missing:
        # The hub removes an operator by its scheme and identifier (the protocol requires
        # both); a tombstone we cannot attribute must not be guessed at, nor passed on to
        # be skipped: refuse the page, so the cursor stays before it.
        why = [f"it lacks {' and '.join(missing)}, which the hub needs to know the operator "
               "to remove (the protocol requires trader_id_scheme and trader_id)"] \
            if missing else []
        raise FormatError(f"{position}: deletion refused: {'; '.join(why + problems)}")
    return Deletion(
        programme=values["programme"] or programme,
        trader_id_scheme=values["trader_id_scheme"],
        trader_id=values["trader_id"],
        authorisation_number=values["authorisation_number"],
        deleted_at=values["deleted_at"],
        position=position,
    )


class AeoNodeConnector(Connector):
    """Reads an administration's node over the ``aeo-node/1`` protocol."""

    name = "aeo_node"
    title = "AEO node (hub node protocol)"
    config_schema = AeoNodeConfig

    # -- plumbing -----------------------------------------------------------------

    def _url(self, path: str) -> str:
        return str(self.config["base_url"]).rstrip("/") + path

    def _client(self, max_retries: int | None = None) -> HttpClient:
        cfg = self.config
        client = HttpClient(
            self.context,
            token=cfg["token"],
            timeout=cfg["timeout"],
            retry=RetryPolicy(
                max_retries=cfg["max_retries"] if max_retries is None else max_retries,
                backoff_base=cfg["backoff_base"],
                backoff_cap=cfg["backoff_cap"],
                max_retry_after=cfg["max_retry_after"],
            ),
            rate_limit=cfg["rate_limit"],
            verify_tls=cfg["verify_tls"],
        )
        client.bind_token(cfg["base_url"])
        return client

    def _params(self, **extra: Any) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.config["programme"]:
            params["programme"] = self.config["programme"]
        params.update({k: v for k, v in extra.items() if v is not None})
        return params

    @staticmethod
    def _info_problem(info: Any) -> str | None:
        if not isinstance(info, dict):
            return "/aeo/v1/info did not answer a JSON object"
        if info.get("protocol") != PROTOCOL:
            return (
                f"/aeo/v1/info announces protocol {info.get('protocol')!r}, expected "
                f"{PROTOCOL!r}: this server does not speak the AEO node protocol; check base_url"
            )
        programmes = info.get("programmes")
        if not isinstance(programmes, list) or not all(
            isinstance(p, dict) and isinstance(p.get("code"), str) for p in programmes
        ):
            return "/aeo/v1/info lacks a list of programmes with codes"
        return None

    # -- check / discover -----------------------------------------------------------

    def check(self) -> CheckResult:
        """Reach ``/aeo/v1/info``, test the token, then read one record of the feed."""
        try:
            with self._client(max_retries=min(self.config["max_retries"], 1)) as client:
                response = client.get(self._url(INFO_PATH), accept="application/json")
                try:
                    info = json.loads(response.content)
                except ValueError:
                    return CheckResult(
                        reachable=True, authenticated=None, format_ok=False,
                        reason=(
                            f"{INFO_PATH} did not answer JSON "
                            f"(Content-Type {response.headers.get('Content-Type', '?')}): "
                            "this server does not speak the AEO node protocol; check base_url"
                        ),
                    )
                finally:
                    response.close()
                problem = self._info_problem(info)
                if problem:
                    return CheckResult(reachable=True, authenticated=None, format_ok=False,
                                       reason=problem)
                served = [p["code"] for p in info["programmes"]]
                wanted = self.config["programme"]
                details = {
                    "protocol": info.get("protocol"),
                    "administration": info.get("administration"),
                    "programmes": served,
                }
                if wanted and wanted not in served:
                    return CheckResult(
                        reachable=True, authenticated=True if self.config["token"] else None,
                        format_ok=False, details=details,
                        reason=(
                            f"the node does not serve programme {wanted!r} (it serves "
                            f"{', '.join(served) or 'none'}); check the programme configured"
                        ),
                    )
                page = client.get_json(self._url(OPERATORS_PATH), self._params(limit=1))
                page_problem = _page_problem(page)
                if page_problem:
                    return CheckResult(reachable=True, authenticated=True, format_ok=False,
                                       reason=page_problem, details=details)
        except AccessDenied as exc:
            return CheckResult(reachable=False, reason=str(exc))
        except AuthenticationFailed as exc:
            return CheckResult(reachable=True, authenticated=False, reason=str(exc))
        except FormatError as exc:
            return CheckResult(reachable=True, format_ok=False, reason=str(exc))
        except SourceUnavailable as exc:
            return CheckResult(
                reachable=False,
                reason=f"{exc}; check base_url and that the node is running",
            )
        return CheckResult(
            reachable=True, authenticated=True if self.config["token"] else None,
            format_ok=True, details=details,
        )

    def discover(self) -> Discovery:
        """Programmes and counts from ``/aeo/v1/info``."""
        with self._client() as client:
            info = client.get_json(self._url(INFO_PATH))
        problem = self._info_problem(info)
        if problem:
            raise FormatError(problem)
        programmes: list[ProgrammeInfo] = []
        flags: list[bool] = []
        wanted = self.config["programme"]
        for item in info["programmes"]:
            count = item.get("count")
            programmes.append(ProgrammeInfo(
                code=item["code"], count=count if isinstance(count, int) else None
            ))
            if not wanted or item["code"] == wanted:
                flags.append(item.get("incremental", True) is not False)
        incremental = self.config["mode"] == "incremental" and bool(flags) and all(flags)
        return Discovery(programmes=programmes, incremental=incremental)

    # -- read -------------------------------------------------------------------------

    def read(self, state: Mapping[str, Any] | None = None) -> Iterator[Batch]:
        """Batches from the feed (incremental) or the NDJSON snapshot (snapshot mode)."""
        if self.config["mode"] == "snapshot":
            return self._read_snapshot(state or {})
        return self._read_incremental(state or {})

    def _read_incremental(self, state: Mapping[str, Any]) -> Iterator[Batch]:
        cursor = state.get("cursor")
        if cursor is not None and not isinstance(cursor, str):
            raise ConnectorError(f"saved state has a cursor of type {type(cursor).__name__}")
        programme = self.config["programme"]
        page_no = 0
        seen = {cursor}  # a cursor met again would page through the same changes forever
        with self._client() as client:
            while True:
                page = client.get_json(
                    self._url(OPERATORS_PATH),
                    self._params(since=cursor, limit=self.config["page_size"]),
                )
                page_no += 1
                problem = _page_problem(page)
                if problem:
                    raise FormatError(problem)
                records = tuple(
                    record_from_json(obj, f"page {page_no} item {i}")
                    for i, obj in enumerate(page["records"], 1)
                )
                deletions = tuple(
                    deletion_from_json(obj, f"page {page_no} deletion {i}", programme)
                    for i, obj in enumerate(page.get("deletions") or [], 1)
                )
                complete = bool(page["complete"])
                next_cursor = page.get("next_cursor")
                if next_cursor is None:
                    if not complete:
                        raise FormatError(
                            f"page {page_no} has no next_cursor although the feed is not complete"
                        )
                    next_cursor = cursor
                if not complete and next_cursor == cursor:
                    raise FormatError(
                        f"page {page_no}: cursor did not advance (still {cursor!r}) although "
                        "the feed is not complete"
                    )
                if not complete and next_cursor in seen:
                    raise FormatError(
                        f"page {page_no}: next_cursor {next_cursor!r} was already read in this "
                        "sync (the node's cursors go round in a cycle) although the feed is "
                        "not complete"
                    )
                seen.add(next_cursor)
                self.log.debug(
                    "%s page %d: %d records, %d deletions, complete=%s", self.name, page_no,
                    len(records), len(deletions), complete,
                )
                yield Batch(records=records, deletions=deletions,
                            state={"cursor": next_cursor}, complete=complete)
                if complete:
                    return
                cursor = next_cursor

    def _read_snapshot(self, state: Mapping[str, Any]) -> Iterator[Batch]:
        offset = int(state.get("offset") or 0)
        size = self.config["page_size"]
        with self._client() as client:
            response = client.get(
                self._url(SNAPSHOT_PATH), self._params(), stream=True,
                accept="application/x-ndjson",
            )
            try:
                yield from self._snapshot_batches(response, offset, size)
            finally:
                response.close()

    def _snapshot_batches(
        self, response: requests.Response, offset: int, size: int
    ) -> Iterator[Batch]:
        done = 0  # records seen, skipped ones included
        pending: list[CanonicalRecord] = []
        trailer: dict[str, Any] | None = None
        line_no = 0
        try:
            for raw in response.iter_lines(chunk_size=65536):
                line_no += 1
                if not raw.strip():
                    continue
                if trailer is not None:
                    raise FormatError(f"line {line_no}: data after the snapshot trailer")
                position = f"line {line_no}"
                try:
                    obj = json.loads(raw)
                except ValueError as exc:
                    done += 1
                    if done > offset:
                        pending.append(CanonicalRecord(
                            fingerprint=fingerprint_json(raw.decode("utf-8", "replace")),
                            position=position,
                            problems=(f"{position}: not valid JSON ({exc})",),
                        ))
                else:
                    if isinstance(obj, dict) and "complete" in obj and "trader_id" not in obj:
                        trailer = obj
                        continue
                    done += 1
                    if done > offset:
                        pending.append(record_from_json(obj, position))
                if len(pending) >= size:
                    yield Batch(records=tuple(pending), state={"offset": done})
                    pending = []
        except requests.exceptions.RequestException as exc:
            raise FormatError(
                f"snapshot truncated: the connection broke after line {line_no} "
                f"({type(exc).__name__})"
            ) from exc
        if trailer is None:
            raise FormatError(
                f"snapshot truncated: {SNAPSHOT_PATH} ended after {done} records without its "
                'completeness trailer {"complete": true, "count": N}'
            )
        if trailer.get("complete") is not True:
            raise FormatError("snapshot trailer says the snapshot is not complete")
        count = trailer.get("count")
        if type(count) is not int or count < 0:  # (a JSON true is not a count)
            # without its count the trailer cannot tell a whole snapshot from a cut one
            raise FormatError("snapshot trailer gives no count of its records: the "
                              'protocol\'s trailer is {"complete": true, "count": N}')
        if count != done:
            raise FormatError(
                f"snapshot trailer says {count} records but {done} were sent"
            )
        yield Batch(records=tuple(pending), state={"offset": None}, complete=True)


def _page_problem(page: Any) -> str | None:
    """What is wrong with an operators page's envelope, if anything."""
    if not isinstance(page, dict):
        return f"{OPERATORS_PATH} did not answer a JSON object"
    missing = [k for k in ("records", "next_cursor", "complete") if k not in page]
    if missing:
        return f"{OPERATORS_PATH} answer lacks {', '.join(repr(k) for k in missing)}"
    if not isinstance(page["records"], list):
        return f"{OPERATORS_PATH} answer's records is not a list"
    if not isinstance(page.get("deletions") or [], list):
        return f"{OPERATORS_PATH} answer's deletions is not a list"
    if not isinstance(page["complete"], bool):
        return f"{OPERATORS_PATH} answer's complete is not a boolean"
    if page["next_cursor"] is not None and not isinstance(page["next_cursor"], str):
        return f"{OPERATORS_PATH} answer's next_cursor is not a string"
    return None
