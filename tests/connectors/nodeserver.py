"""A small, real HTTP node for connector tests, with faults a test can script.

It speaks enough of ``aeo-node/1`` (info, paged feed with cursors, NDJSON snapshot) and
serves arbitrary files under ``/files/NAME``. ``node.script(path, *actions)`` queues
actions consumed one per request to that path: ``("status", 503)``,
``("retry_after", "1")``, ``("truncate",)``, ``("hold", Hold())`` (no answer until the
test releases it), ``("redirect", url)``, ``("html",)``, ``("drip", seconds)`` (the
answer 64 bytes at a time, `seconds` apart). Every request is recorded in
``node.hits``. `Gate` holds the requests of any WSGI app (the simulator's node) the same
way, and `RunningServer.stop()` releases whatever is still held.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from tests.serving import serving

TOKEN = "tok-S3cr3t-7c1f9a"  # the test node's bearer token; must never leak
#: The longest a request is held (so that a failing test cannot hang), in seconds.
HOLD_LIMIT = 30.0

CSV_COLUMNS = (
    "programme", "authorisation_number", "trader_id_scheme", "trader_id", "legal_name",
    "street", "city", "postcode", "region", "country", "status", "status_effective",
    "categories", "authorised_on", "valid_from", "valid_until", "issuing_authority",
    "identifiers", "consent_share", "consent_publish", "changed_at",
)


def make_record(i: int, programme: str = "EU-AEO") -> dict[str, Any]:
    """A protocol record (JSON form) for operator number ``i``."""
    return {
        "programme": programme,
        "authorisation_number": f"DEAEOF{i:05d}/19",
        "trader_id_scheme": "EORI",
        "trader_id": f"DE{100000 + i}",
        "legal_name": f"Müller Logistik {i} GmbH",
        "address": {
            "street": f"{i} Hafenstraße", "city": "Hamburg", "postcode": "20457",
            "region": None, "country": "DE",
        },
        "status": "valid",
        "status_effective": "2019-03-01",
        "categories": [
            {"code": "AEOC", "status": "valid", "since": "2019-03-01"},
            {"code": "AEOS", "status": "suspended" if i % 7 == 0 else "valid",
             "since": "2019-03-01"},
        ],
        "authorised_on": "2019-03-01",
        "valid_from": "2019-03-01",
        "valid_until": None,
        "issuing_authority": "DE Hauptzollamt Hamburg",
        "identifiers": [{"scheme": "MID", "value": f"DEMULLOG{i}HAM", "linked": True}],
        "consent_share": True,
        "consent_publish": i % 2 == 0,
        "changed_at": "2024-05-01T10:00:00Z",
    }


def csv_row(rec: dict[str, Any]) -> list[str]:
    """The node protocol's CSV row for a record."""
    addr = rec["address"]
    flat = {**rec, **addr}
    flat["categories"] = "|".join(
        f"{c['code']}:{c['status']}:{c['since'] or ''}" for c in rec["categories"]
    )
    flat["identifiers"] = "|".join(
        f"{x['scheme']}:{x['value']}:{'linked' if x['linked'] else 'declared'}"
        for x in rec["identifiers"]
    )
    for key in ("consent_share", "consent_publish"):
        flat[key] = "true" if rec[key] else "false"
    return ["" if flat.get(c) is None else str(flat[c]) for c in CSV_COLUMNS]


def csv_text(records: Sequence[dict[str, Any]], delimiter: str = ",") -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for rec in records:
        writer.writerow(csv_row(rec))
    return out.getvalue()


class Hold:
    """A request held without an answer until the test releases it: `arrived` is set once
    the request waits, so a test knows that the client is in the middle of it."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.released = threading.Event()

    def wait(self) -> None:
        self.arrived.set()
        self.released.wait(HOLD_LIMIT)

    def release(self) -> None:
        self.released.set()


class Gate:
    """WSGI middleware: `hold_next(path)` holds the next request to `path` (only that
    one) until the returned `Hold` is released."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.holds: list[Hold] = []
        self._pending: dict[str, Hold] = {}
        self._lock = threading.Lock()

    def hold_next(self, path: str) -> Hold:
        hold = Hold()
        with self._lock:
            self._pending[path] = hold
            self.holds.append(hold)
        return hold

    def release(self) -> None:
        for hold in self.holds:
            hold.release()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with self._lock:
            hold = self._pending.pop(environ.get("PATH_INFO", ""), None)
        if hold is not None:
            hold.wait()
        return self.app(environ, start_response)


@dataclass
class Hit:
    at: float
    path: str
    query: dict[str, str]
    authorization: str | None


@dataclass
class NodeServer:
    """The node's data and behaviour; `url` is set once the server runs."""

    log: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # change log
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    require_token: bool = True
    # True: the protocol's trailer; False: none; a dict: that object as the trailer
    ndjson_trailer: bool | dict[str, Any] = True
    protocol: str = "aeo-node/1"
    # deliberate protocol breaches: "missing_field", "ignore_limit", "stuck_cursor"
    breakage: set[str] = field(default_factory=set)
    url: str = ""
    hits: list[Hit] = field(default_factory=list)
    _scripts: dict[str, deque[tuple[Any, ...]]] = field(
        default_factory=lambda: defaultdict(deque)
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _holds: list[Hold] = field(default_factory=list)

    def add_records(self, n: int, start: int = 0) -> None:
        for i in range(start, start + n):
            self.log.append(("record", make_record(i)))

    def add_deletion(self, i: int) -> None:
        self.log.append(("deletion", {
            "programme": "EU-AEO", "trader_id_scheme": "EORI", "trader_id": f"DE{100000 + i}",
            "authorisation_number": f"DEAEOF{i:05d}/19", "deleted_at": "2024-06-01T00:00:00Z",
        }))

    def script(self, path: str, *actions: tuple[Any, ...]) -> None:
        with self._lock:
            self._scripts[path].extend(actions)

    def release(self) -> None:
        """Answer every held request."""
        for hold in self._holds:
            hold.release()

    def hits_to(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path == path]

    # -- WSGI -------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        response = self.dispatch(request)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        with self._lock:
            self.hits.append(Hit(time.monotonic(), request.path, dict(request.args),
                                 request.headers.get("Authorization")))
            queue = self._scripts.get(request.path)
            action = queue.popleft() if queue else None
        truncate = False
        if action is not None:
            kind = action[0]
            if kind == "status":
                return problem(action[1], "scripted failure")
            if kind == "retry_after":
                resp = problem(429, "slow down")
                resp.headers["Retry-After"] = action[1]
                return resp
            if kind == "hold":
                with self._lock:
                    self._holds.append(action[1])
                action[1].wait()
            if kind == "redirect":
                return Response("", status=302, headers={"Location": action[1]})
            if kind == "html":
                return Response("<html>hello</html>", content_type="text/html")
            truncate = kind == "truncate"
        response = self._respond(request, truncate)
        if action is not None and action[0] == "drip":
            body, pause = response.get_data(), action[1]
            return Response(_slowly(body, pause), status=response.status_code,
                            content_type=response.content_type)
        return response

    def _respond(self, request: Request, truncate: bool) -> Response:
        if request.path.startswith("/files/"):
            name = request.path.removeprefix("/files/")
            if name not in self.files:
                return problem(404, "no such file")
            body, ctype = self.files[name]
            if self.require_token and request.headers.get("Authorization") != f"Bearer {TOKEN}":
                return problem(401, "token required")
            return Response(body, content_type=ctype)
        if self.require_token and request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return problem(401, "missing or wrong bearer token")
        if request.path == "/aeo/v1/info":
            count = sum(1 for kind, _ in self.log if kind == "record")
            return json_response({
                "protocol": self.protocol, "administration": "EU",
                "programmes": [{"code": "EU-AEO", "count": count, "incremental": True}],
                "formats": ["json", "ndjson", "csv", "xml"],
                "server_time": "2024-06-01T00:00:00Z",
            }, truncate)
        if request.path == "/aeo/v1/operators":
            since = request.args.get("since") or "c0"
            if not since.startswith("c") or not since[1:].isdigit():
                return problem(400, "unknown cursor")
            start = int(since[1:])
            limit = int(request.args.get("limit", 500))
            if "ignore_limit" in self.breakage:
                limit += 2
            entries = self.log[start:start + limit]
            end = start + len(entries)
            records = [e for kind, e in entries if kind == "record"]
            if "missing_field" in self.breakage and len(records) >= 3:
                records[2] = {k: v for k, v in records[2].items() if k != "trader_id"}
            return json_response({
                "records": records,
                "deletions": [e for kind, e in entries if kind == "deletion"],
                "next_cursor": since if "stuck_cursor" in self.breakage else f"c{end}",
                "complete": end >= len(self.log),
            }, truncate)
        if request.path == "/aeo/v1/operators.ndjson":
            return Response(self._ndjson(), content_type="application/x-ndjson")
        return problem(404, "not found")

    def _ndjson(self) -> Iterator[bytes]:
        records = [e for kind, e in self.log if kind == "record"]
        for rec in records:
            yield (json.dumps(rec) + "\n").encode()
        if isinstance(self.ndjson_trailer, dict):
            yield (json.dumps(self.ndjson_trailer) + "\n").encode()
        elif self.ndjson_trailer:
            yield (json.dumps({"complete": True, "count": len(records)}) + "\n").encode()


def problem(status: int, title: str) -> Response:
    return Response(json.dumps({"title": title, "status": status}), status=status,
                    content_type="application/problem+json")


def _slowly(body: bytes, pause: float) -> Iterator[bytes]:
    """`body` 64 bytes at a time, `pause` seconds apart."""
    for start in range(0, len(body), 64):
        time.sleep(pause)
        yield body[start:start + 64]


def json_response(doc: Any, truncate: bool = False) -> Response:
    body = json.dumps(doc)
    if truncate:
        body = body[: len(body) // 2]
    return Response(body, content_type="application/json")


class RunningServer:
    """Runs a WSGI app on 127.0.0.1 in a thread; `stop()` releases the requests the app
    holds (`Hold`) first."""

    def __init__(self, app: Any) -> None:
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._serving = ExitStack()
        self._serving.enter_context(serving(self.server))

    def stop(self) -> None:
        release = getattr(self.server.app, "release", None)
        if callable(release):
            release()
        self._serving.close()


def xml_text(records: Sequence[dict[str, Any]], namespace: str | None = "urn:aeohub:node:1",
             count: int | None = None, programme: str = "EU-AEO") -> str:
    """The node protocol's XML snapshot for records."""
    ns = f' xmlns="{namespace}"' if namespace else ""
    n = len(records) if count is None else count
    out = [f'<?xml version="1.0" encoding="UTF-8"?>\n<registry{ns} programme="{programme}"'
           f' count="{n}">']
    for rec in records:
        out.append("  <operator>")
        for key in CSV_COLUMNS:
            if key in ("street", "city", "postcode", "region", "country"):
                continue
            if key == "categories":
                out.append("    <categories>" + "".join(
                    f"<category code={quoteattr(c['code'])} status={quoteattr(c['status'])}"
                    f" since={quoteattr(c['since'] or '')}/>" for c in rec["categories"]
                ) + "</categories>")
            elif key == "identifiers":
                out.append("    <identifiers>" + "".join(
                    f"<identifier scheme={quoteattr(x['scheme'])} "
                    f"linked=\"{'true' if x['linked'] else 'false'}\">{escape(x['value'])}"
                    "</identifier>" for x in rec["identifiers"]
                ) + "</identifiers>")
            elif rec.get(key) is not None:
                value = rec[key]
                if isinstance(value, bool):
                    value = "true" if value else "false"
                out.append(f"    <{key}>{escape(str(value))}</{key}>")
            if key == "legal_name":
                addr = rec["address"]
                out.append("    <address>" + "".join(
                    f"<{k}>{escape(v)}</{k}>" for k, v in addr.items() if v is not None
                ) + "</address>")
        out.append("  </operator>")
    out.append("</registry>\n")
    return "\n".join(out)
