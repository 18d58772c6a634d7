"""Checks a live node against the node protocol (``aeo-node/1``) and says plainly what breaks it.

`check_node(url, token=..., programme=...)` talks to the node over HTTP the way the hub
does and returns a `ConformanceReport`: every breach as one sentence a node owner can act
on ("GET /aeo/v1/operators: record 3 lacks field 'trader_id'", "cursor did not advance",
"snapshot has no completeness trailer", "unauthenticated request was answered 200,
expected 401", "limit=5 returned 7 records"), plus warnings for things that are allowed
but suspicious. Records, pages and trailers are validated against the JSON schemas of the
protocol's OpenAPI document (``node-protocol.yaml`` beside this module). It uses nothing
of the hub, so a node's owner can run it without one; `aeohub node conformance URL` is
its command.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import requests
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from connectors.aeo_node import (
    INFO_PATH,
    OPERATORS_PATH,
    PROTOCOL,
    SNAPSHOT_PATH,
    protocol_document_text,
)

__all__ = ["ConformanceReport", "check_node", "schema_errors"]

_DOC_URI = "urn:aeohub:node-protocol:1"
MAX_MESSAGES_PER_CHECK = 10  # beyond this, one "... and N more" line


@lru_cache(maxsize=1)
def _registry() -> Registry:
    document = yaml.safe_load(protocol_document_text())
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry = Registry().with_resource(_DOC_URI, resource)
    return registry


@cache
def _validator(component: str) -> jsonschema.Draft202012Validator:
    schema = {"$ref": f"{_DOC_URI}#/components/schemas/{component}"}
    return jsonschema.Draft202012Validator(
        schema, registry=_registry(),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _describe(error: jsonschema.ValidationError, what: str) -> str:
    path = ".".join(str(p) for p in error.absolute_path)
    where = f"{what} field '{path}'" if path else what
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [f for f in error.validator_value if f not in error.instance]
        inside = f"{what} {path}" if path else what
        noun = "field" if len(missing) == 1 else "fields"
        return f"{inside} lacks {noun} {', '.join(repr(f) for f in missing)}"
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"{where} is {_json_type(error.instance)}, expected {expected}"
    if error.validator in ("enum", "const"):
        allowed = error.validator_value if error.validator == "enum" else [error.validator_value]
        return f"{where} is {error.instance!r}, expected one of {', '.join(map(repr, allowed))}"
    if error.validator == "format":
        return f"{where} is {error.instance!r}, not a valid {error.validator_value}"
    return f"{where}: {error.message}"


def schema_errors(component: str, instance: Any, what: str) -> list[str]:
    """Plain sentences for every way ``instance`` breaks schema ``component``."""
    errors = sorted(
        _validator(component).iter_errors(instance),
        key=lambda e: [str(p) for p in e.absolute_path],
    )
    # jsonschema reports each missing required field separately; one sentence says it all
    return list(dict.fromkeys(_describe(e, what) for e in errors))


@dataclass
class ConformanceReport:
    """The outcome: conformant when there is no breach."""

    url: str
    breaches: list[str] = field(default_factory=list)  # protocol violations
    warnings: list[str] = field(default_factory=list)  # allowed but worth a look
    checks: list[str] = field(default_factory=list)  # what was checked, in order
    facts: dict[str, Any] = field(default_factory=dict)  # counts, pages walked, ...

    @property
    def conformant(self) -> bool:
        return not self.breaches

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url, "protocol": PROTOCOL, "conformant": self.conformant,
            "breaches": self.breaches, "warnings": self.warnings, "checks": self.checks,
            "facts": self.facts,
        }

    def render(self) -> str:
        lines = [f"Node {self.url} against {PROTOCOL}:"]
        lines += [f"  checked: {c}" for c in self.checks]
        lines += [f"  BREACH: {b}" for b in self.breaches]
        lines += [f"  warning: {w}" for w in self.warnings]
        if self.conformant:
            lines.append(f"Conformant ({len(self.checks)} checks).")
        else:
            lines.append(f"NOT conformant: {len(self.breaches)} breach(es).")
        return "\n".join(lines)


class _Checker:
    def __init__(
        self, *, url: str, token: str | None, programme: str | None, timeout: float,
        page_limit: int, max_pages: int, verify_tls: bool,
    ) -> None:
        self.base = url.rstrip("/")
        self.token = token
        self.programme = programme
        self.timeout = timeout
        self.page_limit = page_limit
        self.max_pages = max_pages
        self.report = ConformanceReport(url=url)
        self.session = requests.Session()
        self.session.verify = verify_tls
        self.session.trust_env = False
        self.session.headers["User-Agent"] = "aeohub-conformance/1"

    # -- helpers --------------------------------------------------------------------

    def breach(self, message: str) -> None:
        self.report.breaches.append(message)

    def breaches(self, messages: list[str]) -> None:
        self.report.breaches.extend(messages[:MAX_MESSAGES_PER_CHECK])
        if len(messages) > MAX_MESSAGES_PER_CHECK:
            self.breach(f"... and {len(messages) - MAX_MESSAGES_PER_CHECK} more like these")

    def get(
        self, path: str, params: dict[str, Any] | None = None, *, token: str | bool | None = True,
        stream: bool = False,
    ) -> requests.Response:
        headers = {"Accept": "application/json"}
        sent = self.token if token is True else token
        if sent:
            headers["Authorization"] = f"Bearer {sent}"
        query = dict(params or {})
        if self.programme:
            query.setdefault("programme", self.programme)
        return self.session.get(
            self.base + path, params=query, headers=headers, timeout=self.timeout,
            stream=stream, allow_redirects=False,
        )

    def get_json(
        self, path: str, params: dict[str, Any] | None = None, label: str | None = None
    ) -> Any:
        """The JSON body of a 200 answer, or None after recording why not."""
        label = label or f"GET {path}"
        try:
            response = self.get(path, params)
        except requests.RequestException as exc:
            self.breach(f"{label}: no answer ({type(exc).__name__})")
            return None
        with response:
            if response.status_code != 200:
                self.breach(f"{label} was answered {response.status_code}, expected 200")
                return None
            ctype = response.headers.get("Content-Type", "")
            if "json" not in ctype:
                self.breach(f"{label}: Content-Type is {ctype or 'missing'}, expected JSON")
            try:
                return json.loads(response.content)
            except ValueError:
                self.breach(f"{label}: the body is not valid JSON")
                return None

    # -- checks ---------------------------------------------------------------------

    def run(self) -> ConformanceReport:
        try:
            if self.check_info():
                self.check_auth()
                self.check_limit()
                self.check_feed()
                self.check_bad_cursor()
                self.check_snapshot()
        finally:
            self.session.close()
        return self.report

    def check_info(self) -> bool:
        self.report.checks.append(f"GET {INFO_PATH} answers the node's description")
        try:
            response = self.get(INFO_PATH)
        except requests.RequestException as exc:
            host = urlsplit(self.base).netloc
            self.breach(f"GET {INFO_PATH}: could not reach {host} ({type(exc).__name__})")
            return False
        with response:
            if response.status_code in (401, 403):
                self.breach(
                    f"GET {INFO_PATH} was answered {response.status_code} with the token given; "
                    "check the token"
                )
                return False
            if response.status_code != 200:
                self.breach(f"GET {INFO_PATH} was answered {response.status_code}, expected 200")
                return False
            try:
                info = json.loads(response.content)
            except ValueError:
                self.breach(f"GET {INFO_PATH}: the body is not JSON; is this an AEO node?")
                return False
        self.breaches(schema_errors("Info", info, f"GET {INFO_PATH}"))
        if not isinstance(info, dict) or info.get("protocol") != PROTOCOL:
            return False
        codes = [p.get("code") for p in info.get("programmes") or [] if isinstance(p, dict)]
        self.report.facts["programmes"] = codes
        if self.programme and self.programme not in codes:
            self.breach(
                f"GET {INFO_PATH}: programme {self.programme!r} is not among the programmes "
                f"served ({', '.join(map(str, codes)) or 'none'})"
            )
        for item in info.get("programmes") or []:
            if isinstance(item, dict) and item.get("code") == self.programme:
                self.report.facts["declared_count"] = item.get("count")
        return True

    def check_auth(self) -> None:
        self.report.checks.append("requests without a valid bearer token are refused with 401")
        for path in (INFO_PATH, OPERATORS_PATH):
            for token, who in ((False, "unauthenticated request"),
                               ("not-a-valid-token-" + "x" * 12, "request with a wrong token")):
                try:
                    response = self.get(path, {"limit": 1} if path == OPERATORS_PATH else None,
                                        token=token)
                except requests.RequestException as exc:
                    self.breach(f"GET {path}: {who} got no answer ({type(exc).__name__})")
                    continue
                with response:
                    status = response.status_code
                    ctype = response.headers.get("Content-Type", "")
                if status != 401:
                    self.breach(f"GET {path}: {who} was answered {status}, expected 401")
                elif "application/problem+json" not in ctype:
                    self.breach(
                        f"GET {path}: the 401 answer is {ctype or 'untyped'}, expected "
                        "application/problem+json"
                    )

    def _page_checks(self, page: Any, label: str, limit: int) -> bool:
        """Validate one page; True when it can be followed."""
        messages: list[str] = []
        if not isinstance(page, dict):
            self.breach(f"{label}: the answer is not a JSON object")
            return False
        for key in ("records", "deletions", "next_cursor", "complete"):
            if key not in page:
                messages.append(f"{label}: the page lacks field {key!r}")
        records: list[Any] = page["records"] if isinstance(page.get("records"), list) else []
        deletions: list[Any] = (
            page["deletions"] if isinstance(page.get("deletions"), list) else []
        )
        for i, record in enumerate(records, 1):
            messages += schema_errors("Record", record, f"{label}: record {i}")
        for i, deletion in enumerate(deletions, 1):
            messages += schema_errors("Deletion", deletion, f"{label}: deletion {i}")
        if not isinstance(page.get("complete", False), bool):
            messages.append(f"{label}: complete is {_json_type(page.get('complete'))}, "
                            "expected a boolean")
        cursor = page.get("next_cursor")
        if cursor is not None and not isinstance(cursor, str):
            messages.append(f"{label}: next_cursor is {_json_type(cursor)}, expected a string")
        if len(records) + len(deletions) > limit:
            messages.append(
                f"limit={limit} returned {len(records)} records"
                + (f" and {len(deletions)} deletions" if deletions else "")
            )
        self.breaches(messages)
        return "records" in page and "complete" in page

    def check_limit(self) -> None:
        self.report.checks.append(f"GET {OPERATORS_PATH}?limit=5 holds at most 5 entries")
        label = f"GET {OPERATORS_PATH}"
        page = self.get_json(OPERATORS_PATH, {"limit": 5}, label)
        if page is not None:
            self._page_checks(page, label, 5)

    def check_feed(self) -> None:
        self.report.checks.append(
            f"GET {OPERATORS_PATH} pages follow next_cursor to completion"
        )
        cursor: str | None = None
        records = 0
        for page_no in range(1, self.max_pages + 1):
            label = f"GET {OPERATORS_PATH} (page {page_no})"
            params: dict[str, Any] = {"limit": self.page_limit}
            if cursor is not None:
                params["since"] = cursor
            page = self.get_json(OPERATORS_PATH, params, label)
            if page is None or not self._page_checks(page, label, self.page_limit):
                return
            records += len(page["records"]) if isinstance(page["records"], list) else 0
            complete = page.get("complete") is True
            next_cursor = page.get("next_cursor")
            if complete:
                self.report.facts["feed_pages"] = page_no
                self.report.facts["feed_records"] = records
                self.report.facts["final_cursor"] = next_cursor
                return
            if not isinstance(next_cursor, str):
                self.breach(f"{label}: the feed is not complete but next_cursor is missing")
                return
            if next_cursor == cursor:
                self.breach(f"{label}: cursor did not advance (still {cursor!r}) while the "
                            "feed is not complete")
                return
            cursor = next_cursor
        self.report.warnings.append(
            f"stopped after {self.max_pages} pages of {self.page_limit} without reaching the "
            "end of the feed"
        )

    def check_bad_cursor(self) -> None:
        self.report.checks.append("an unknown cursor is answered with 400")
        try:
            response = self.get(OPERATORS_PATH, {"since": "!not-a-cursor!", "limit": 1})
        except requests.RequestException:
            return
        with response:
            status = response.status_code
        if status != 400:
            self.report.warnings.append(
                f"GET {OPERATORS_PATH}?since=<unknown cursor> was answered {status}, "
                "expected 400"
            )

    def _lines(self, response: requests.Response) -> Iterator[bytes]:
        try:
            yield from response.iter_lines(chunk_size=65536)
        except requests.RequestException as exc:
            self.breach(f"GET {SNAPSHOT_PATH}: the body broke off ({type(exc).__name__})")

    def check_snapshot(self) -> None:
        self.report.checks.append(
            f"GET {SNAPSHOT_PATH} holds valid records and ends with its completeness trailer"
        )
        label = f"GET {SNAPSHOT_PATH}"
        try:
            response = self.get(SNAPSHOT_PATH, stream=True)
        except requests.RequestException as exc:
            self.breach(f"{label}: no answer ({type(exc).__name__})")
            return
        with response:
            if response.status_code != 200:
                self.breach(f"{label} was answered {response.status_code}, expected 200")
                return
            messages: list[str] = []
            count = 0
            trailer: Any = None
            for line_no, raw in enumerate(self._lines(response), 1):
                if not raw.strip():
                    continue
                if trailer is not None:
                    messages.append(f"{label}: line {line_no} follows the trailer")
                    break
                try:
                    obj = json.loads(raw)
                except ValueError:
                    messages.append(f"{label}: line {line_no} is not valid JSON")
                    continue
                if isinstance(obj, dict) and "complete" in obj and "trader_id" not in obj:
                    trailer = obj
                    continue
                count += 1
                messages += schema_errors("Record", obj, f"{label}: record {count}")
        self.breaches(messages)
        self.report.facts["snapshot_records"] = count
        if trailer is None:
            self.breach("snapshot has no completeness trailer")
            return
        self.breaches(schema_errors("SnapshotTrailer", trailer, f"{label}: trailer"))
        if isinstance(trailer.get("count"), int) and trailer["count"] != count:
            self.breach(f"snapshot trailer says count {trailer['count']} but {count} records "
                        "were sent")
        declared = self.report.facts.get("declared_count")
        if isinstance(declared, int) and declared != count:
            self.report.warnings.append(
                f"{INFO_PATH} says {declared} operators but the snapshot holds {count}"
            )


def check_node(
    url: str,
    *,
    token: str | None = None,
    programme: str | None = None,
    timeout: float = 10.0,
    page_limit: int = 100,
    max_pages: int = 500,
    verify_tls: bool = True,
) -> ConformanceReport:
    """Check the node at ``url`` against the protocol; see the module docstring."""
    checker = _Checker(
        url=url, token=token, programme=programme, timeout=timeout, page_limit=page_limit,
        max_pages=max_pages, verify_tls=verify_tls,
    )
    return checker.run()
