"""A simulated administration node speaking the node protocol over real HTTP.

Serves one or more programmes' registries (docs/node-protocol.md):
``GET /aeo/v1/info``, ``GET /aeo/v1/operators`` (JSON pages ordered by change sequence,
deletions included, opaque cursors), ``.ndjson`` (snapshot plus trailer), ``.csv`` and
``.xml`` snapshots, all behind a bearer token (401 ``application/problem+json``).

Faults (:class:`hub.sim.faults.Faults`) are injectable at start, through the Python API and
at run time with ``POST /sim/v1/faults``. Control endpoints: ``POST /sim/v1/advance``,
``POST /sim/v1/apply``, ``GET /sim/v1/state``, ``GET /sim/v1/ground-truth``.

Rendered lines are cached per record and change sequence, so a 60,000-record snapshot or a
5,000-record page is a join of pre-rendered bytes.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from hub.sim import formats
from hub.sim.churn import CHANGE_KINDS, ChangeError
from hub.sim.faults import MALFORMATIONS, FaultError, Faults
from hub.sim.generator import DEFAULT_OVERLAP, programme_profile
from hub.sim.registry import Registry

PROTOCOL = "aeo-node/1"
DEFAULT_TOKEN = "sim-token"  # noqa: S105 - a simulator's well-known demo token
DEFAULT_LIMIT = 500
MAX_LIMIT = 5000
_CHUNK = 1000  # lines per streamed chunk


class Problem(Exception):
    """An error answered as application/problem+json."""

    def __init__(self, status: int, title: str, detail: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})

    def response(self) -> Response:
        body = {"type": "about:blank", "title": self.title, "status": self.status,
                "detail": self.detail}
        return Response(json.dumps(body), status=self.status, headers=self.headers,
                        content_type="application/problem+json")


def encode_cursor(programme: str, seq: int) -> str:
    """The opaque cursor for "everything after sequence `seq`"."""
    return base64.urlsafe_b64encode(f"v1:{programme}:{seq}".encode()).decode().rstrip("=")


def decode_cursor(programme: str, cursor: str) -> int:
    """The sequence in `cursor`; Problem 400 when it is not one of this programme's cursors."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, cursor_programme, seq = raw.split(":")
        value = int(seq)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise Problem(400, "Invalid cursor", f"{cursor!r} is not a cursor of this node") from None
    if version != "v1" or cursor_programme != programme or value < 0:
        raise Problem(400, "Invalid cursor", f"{cursor!r} is not a cursor of {programme}")
    return value


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class NodeApp:
    """The WSGI application of a simulated node."""

    def __init__(self, registries: Sequence[Registry], token: str | None = DEFAULT_TOKEN,
                 faults: Faults | Mapping[str, Any] | str | None = None, seed: int = 1) -> None:
        if not registries:
            raise ValueError("a node serves at least one programme")
        self.registries = {registry.programme: registry for registry in registries}
        self.token = token or None
        self.faults = Faults.parse(faults)
        self.lock = threading.RLock()
        self.requests = 0  # /aeo/v1 requests seen
        self._rng = random.Random(f"aeo-sim/{seed}/faults")
        self._recent: deque[float] = deque()
        self._cache: dict[tuple[str, int], tuple[int, dict[str, bytes]]] = {}
        self.url_map = Map([
            Rule("/aeo/v1/info", endpoint="info", methods=["GET"]),
            Rule("/aeo/v1/operators", endpoint="operators", methods=["GET"]),
            Rule("/aeo/v1/operators.ndjson", endpoint="ndjson", methods=["GET"]),
            Rule("/aeo/v1/operators.csv", endpoint="csv", methods=["GET"]),
            Rule("/aeo/v1/operators.xml", endpoint="xml", methods=["GET"]),
            Rule("/sim/v1/state", endpoint="state", methods=["GET"]),
            Rule("/sim/v1/faults", endpoint="faults", methods=["GET", "POST", "DELETE"]),
            Rule("/sim/v1/advance", endpoint="advance", methods=["POST"]),
            Rule("/sim/v1/apply", endpoint="apply", methods=["POST"]),
            Rule("/sim/v1/ground-truth", endpoint="ground_truth", methods=["GET"]),
        ])

    # --- WSGI ---------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any],
                 start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except Problem as problem:
            response = problem.response()
        except HTTPException as exc:
            response = Problem(exc.code or 500, exc.name, exc.description or exc.name).response()
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        endpoint, _ = adapter.match()
        data_path = request.path.startswith("/aeo/")
        if data_path:
            faults = self.faults
            if faults.latency_ms:
                time.sleep(faults.latency_ms / 1000)
            if not (faults.breach("no_auth")):
                self._authorise(request)
            self._inject_failures()
        else:
            self._authorise(request)
        handler: Callable[[Request], Response] = getattr(self, f"_{endpoint}")
        response = handler(request)
        if data_path and self.faults.truncate and endpoint != "info":
            response = _truncated(response)
        return response

    def _authorise(self, request: Request) -> None:
        if self.token is None:
            return
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or value.strip() != self.token:
            detail = "missing bearer token" if not header else "invalid bearer token"
            raise Problem(401, "Unauthorized", detail,
                          {"WWW-Authenticate": 'Bearer realm="aeo-node"'})

    def _inject_failures(self) -> None:
        faults = self.faults
        with self.lock:
            self.requests += 1
            if faults.rate_limit:
                now = time.monotonic()
                while self._recent and now - self._recent[0] >= 1.0:
                    self._recent.popleft()
                if len(self._recent) >= faults.rate_limit:
                    raise Problem(429, "Too Many Requests",
                                  f"at most {faults.rate_limit} requests a second",
                                  {"Retry-After": str(faults.retry_after)})
                self._recent.append(now)
            if faults.fail_next > 0:
                faults.fail_next -= 1
                raise Problem(503, "Service Unavailable", "simulated outage (fail_next)",
                              {"Retry-After": str(faults.retry_after)})
            if faults.error_rate and self._rng.random() < faults.error_rate:
                status = self._rng.choice([500, 502, 503])
                raise Problem(status, "Simulated server error", "simulated error (error_rate)")

    # --- helpers --------------------------------------------------------------------------

    def _registry(self, request: Request) -> Registry:
        code = request.args.get("programme")
        if code is None:
            if len(self.registries) == 1:
                return next(iter(self.registries.values()))
            raise Problem(400, "Programme required",
                          f"this node serves {', '.join(self.registries)}: pass ?programme=")
        try:
            return self.registries[code]
        except KeyError:
            raise Problem(404, "Unknown programme",
                          f"{code!r} is not served here; try {', '.join(self.registries)}",
                          ) from None

    def _record(self, registry: Registry, index: int) -> dict[str, Any] | None:
        record = registry.record(index)
        if record is None:
            return None
        faults = self.faults
        broken = faults.malformed_rate and random.Random(
            f"aeo-sim/{registry.seed}/malformed/{registry.programme}/{index}"
        ).random() < faults.malformed_rate
        duplicate = faults.duplicate_ids and index % 2 == 1 and index // 2 < faults.duplicate_ids
        missing = faults.breach("missing_fields")
        if not (broken or duplicate or missing):
            return record
        record = dict(json.loads(json.dumps(record)))
        if broken:
            _malform(record, MALFORMATIONS[index % len(MALFORMATIONS)])
        if duplicate:
            twin = registry.record(index - 1)
            if twin is not None:
                record["trader_id"] = twin["trader_id"]
        if missing:
            for name in ("status", "changed_at", "trader_id_scheme"):
                record.pop(name, None)
        return record

    def _line(self, registry: Registry, index: int, fmt: str) -> bytes | None:
        """The rendered record (None when removed), cached unless a fault alters records."""
        faults = self.faults
        altered = faults.malformed_rate or faults.duplicate_ids or faults.breach("missing_fields")
        seq = registry.seq_of(index)
        key = (registry.programme, index)
        if not altered:
            cached = self._cache.get(key)
            if cached is not None and cached[0] == seq and fmt in cached[1]:
                return cached[1][fmt]
        record = self._record(registry, index)
        if record is None:
            return None
        if altered:
            return _RENDERERS[fmt](record)
        # Generating the record costs more than rendering it: render every format at once.
        lines = {name: render(record) for name, render in _RENDERERS.items()}
        self._cache[key] = (seq, lines)
        return lines[fmt]

    def _snapshot_lines(self, registry: Registry, fmt: str) -> list[bytes]:
        if self.faults.empty:
            return []
        with self.lock:
            lines = []
            for _, index in registry.entries():
                line = self._line(registry, index, fmt)
                if line is not None:
                    lines.append(line)
            return lines

    def warm(self) -> None:
        """Render every record's JSON line now, so the first request is fast."""
        for registry in self.registries.values():
            self._snapshot_lines(registry, "json")

    # --- data endpoints -------------------------------------------------------------------

    def _info(self, request: Request) -> Response:
        programmes = []
        administration = None
        with self.lock:
            for code, registry in self.registries.items():
                administration = administration or programme_profile(code).administration
                programmes.append({"code": code,
                                   "count": 0 if self.faults.empty else registry.published_count,
                                   "incremental": True})
        body = {"protocol": PROTOCOL, "administration": administration,
                "programmes": programmes, "formats": ["json", "ndjson", "csv", "xml"],
                "server_time": _now()}
        return _json_response(body)

    def _operators(self, request: Request) -> Response:
        registry = self._registry(request)
        since_raw = request.args.get("since")
        after = decode_cursor(registry.programme, since_raw) if since_raw else 0
        limit_raw = request.args.get("limit")
        try:
            limit = int(limit_raw) if limit_raw is not None else DEFAULT_LIMIT
        except ValueError:
            raise Problem(400, "Invalid limit", f"limit {limit_raw!r} is not a number") from None
        if limit < 1:
            raise Problem(400, "Invalid limit", "limit must be at least 1")
        limit = min(limit, MAX_LIMIT)
        faults = self.faults
        if faults.breach("ignore_limit"):
            limit = max(limit * 4, 4 * MAX_LIMIT)
        records: list[bytes] = []
        deletions: list[bytes] = []
        last = after
        complete = True
        with self.lock:
            if not faults.empty:
                for seq, index in registry.entries(after):
                    if len(records) + len(deletions) >= limit:
                        complete = False
                        break
                    line = self._line(registry, index, "json")
                    if line is None:
                        deletion = registry.deletion(index)
                        assert deletion is not None
                        deletions.append(formats.json_line(deletion))
                    else:
                        records.append(line)
                    last = seq
        next_cursor = encode_cursor(registry.programme, after if faults.breach("cursor_stuck")
                                    else last)
        body = b"".join([
            b'{"records":[', b",".join(records), b'],"deletions":[', b",".join(deletions),
            b'],"next_cursor":', json.dumps(next_cursor).encode(),
        ])
        if not faults.breach("missing_fields"):
            body += b',"complete":' + (b"true" if complete else b"false")
        body += b"}"
        return Response(body, content_type="application/json")

    def _ndjson(self, request: Request) -> Response:
        registry = self._registry(request)
        lines = self._snapshot_lines(registry, "json")
        trailer = None if self.faults.breach("no_trailer") else formats.json_line(
            {"complete": True, "count": len(lines)})
        return _stream(_chunks([], lines, [trailer] if trailer else [], b"\n"),
                       "application/x-ndjson", self.faults.truncate)

    def _csv(self, request: Request) -> Response:
        registry = self._registry(request)
        lines = self._snapshot_lines(registry, "csv")
        return _stream(_chunks([formats.csv_header()], lines, [], b""),
                       "text/csv; charset=utf-8", self.faults.truncate)

    def _xml(self, request: Request) -> Response:
        registry = self._registry(request)
        lines = self._snapshot_lines(registry, "xml")
        head = formats.xml_open(registry.programme, len(lines))
        return _stream(_chunks([head], lines, [formats.xml_close()], b""),
                       "application/xml; charset=utf-8", self.faults.truncate)

    # --- control endpoints ----------------------------------------------------------------

    def _state(self, request: Request) -> Response:
        with self.lock:
            programmes = {
                code: {"size": r.size, "count": r.count, "published": r.published_count,
                       "day": r.day, "today": r.today.isoformat(), "max_seq": r.max_seq,
                       "version": r.version, "changes": len(r.log)}
                for code, r in self.registries.items()
            }
        return _json_response({"programmes": programmes, "faults": self.faults.as_dict(),
                               "requests": self.requests})

    def _faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            with self.lock:
                self.faults = Faults()
        elif request.method == "POST":
            body = _json_body(request)
            try:
                with self.lock:
                    updated = Faults() if body.pop("clear", False) else Faults.parse(self.faults)
                    updated.update(body)
                    self.faults = updated
            except FaultError as exc:
                raise Problem(400, "Invalid faults", str(exc)) from exc
        return _json_response(self.faults.as_dict())

    def _advance(self, request: Request) -> Response:
        body = _json_body(request)
        try:
            days = int(body.get("days", 1))
        except (TypeError, ValueError):
            raise Problem(400, "Invalid days", "days must be a whole number") from None
        if not 0 <= days <= 3650:
            raise Problem(400, "Invalid days", "days must be between 0 and 3650")
        codes = [body["programme"]] if body.get("programme") else list(self.registries)
        changes = []
        with self.lock:
            for code in codes:
                if code not in self.registries:
                    raise Problem(404, "Unknown programme", f"{code!r} is not served here")
                changes.extend(self.registries[code].advance(days))
        return _json_response({"days": days, "changes": [c.as_dict() for c in changes]})

    def _apply(self, request: Request) -> Response:
        body = _json_body(request)
        kind = body.get("kind")
        if kind not in CHANGE_KINDS:
            raise Problem(400, "Invalid change", f"kind must be one of {', '.join(CHANGE_KINDS)}")
        trader_id = body.get("trader_id")
        code = body.get("programme")
        with self.lock:
            if code is None:
                candidates = list(self.registries.values())
                if trader_id and len(candidates) > 1:
                    candidates = [r for r in candidates if _knows(r, trader_id)]
                    if not candidates:
                        raise Problem(404, "Change not possible",
                                      f"no operator {trader_id!r} on this node")
                if len(candidates) != 1:
                    raise Problem(400, "Programme required",
                                  "pass programme: the trader id is not unique to one programme")
                registry = candidates[0]
            elif code in self.registries:
                registry = self.registries[code]
            else:
                raise Problem(404, "Unknown programme", f"{code!r} is not served here")
            try:
                change = registry.apply(kind, trader_id, body.get("component"))
            except ChangeError as exc:
                status = 404 if "no operator" in str(exc) else 409
                raise Problem(status, "Change not possible", str(exc)) from exc
        return _json_response(change.as_dict())

    def _ground_truth(self, request: Request) -> Response:
        registry = self._registry(request)
        with self.lock:
            lines = [formats.json_line({"trader_id": trader_id, "company_id": company_id})
                     for trader_id, company_id in registry.iter_ground_truth()]
        return _stream(_chunks([], lines, [], b"\n"), "application/x-ndjson", False)


_RENDERERS: dict[str, Callable[[dict[str, Any]], bytes]] = {
    "json": formats.json_line, "csv": formats.csv_line, "xml": formats.xml_line,
}


class _QuietHandler(WSGIRequestHandler):
    """Request handler that does not log every request (errors are still logged)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


def _knows(registry: Registry, trader_id: str) -> bool:
    try:
        registry.index_of(trader_id)
    except KeyError:
        return False
    return True


def _malform(record: dict[str, Any], how: str) -> None:
    if how == "bad_date":
        record["authorised_on"] = "2024-13-45"
        record["status_effective"] = "31/02/2024"
    elif how == "invalid_identifier":
        record["trader_id"] = "??" + str(record.get("trader_id", ""))[:3] + "!"
    elif how == "unknown_status":
        record["status"] = "probation"
    elif how == "missing_name":
        record["legal_name"] = None


def _json_body(request: Request) -> dict[str, Any]:
    if not request.data:
        return {}
    try:
        body = json.loads(request.data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise Problem(400, "Invalid JSON", f"the body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise Problem(400, "Invalid JSON", "the body must be a JSON object")
    return body


def _json_response(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status,
                    content_type="application/json")


def _chunks(head: list[bytes], lines: list[bytes], tail: list[bytes],
            separator: bytes) -> Iterator[bytes]:
    yield from head
    for start in range(0, len(lines), _CHUNK):
        batch = lines[start:start + _CHUNK]
        yield separator.join(batch) + separator
    for item in tail:
        yield item + separator


def _stream(chunks: Iterator[bytes], content_type: str, truncate: bool) -> Response:
    if truncate:
        return Response(b"".join(chunks), content_type=content_type)  # cut by the caller
    return Response(chunks, content_type=content_type, direct_passthrough=True)


def _truncated(response: Response) -> Response:
    """Promise the whole body in Content-Length, send about half, then close."""
    body = response.get_data()
    cut = body[: max(1, len(body) // 2)]
    truncated = Response(cut, status=response.status_code, content_type=response.content_type)
    truncated.headers["Content-Length"] = str(len(body))
    truncated.headers["Connection"] = "close"
    truncated.automatically_set_content_length = False
    return truncated


class NodeServer:
    """A node on a real loopback HTTP server, in a background thread.

    ``with NodeServer(["EU-AEO"], size=500, seed=3) as node: requests.get(node.url + ...)``
    """

    def __init__(self, programmes: Sequence[str] | str = ("EU-AEO",), *,
                 size: int | Mapping[str, int] = 1000, seed: int = 1, day: int = 0,
                 token: str | None = DEFAULT_TOKEN,
                 faults: Faults | Mapping[str, Any] | str | None = None,
                 host: str = "127.0.0.1", port: int = 0,
                 registries: Sequence[Registry] | None = None,
                 overlap: float = DEFAULT_OVERLAP, warm: bool = True) -> None:
        if registries is None:
            codes = [programmes] if isinstance(programmes, str) else list(programmes)
            registries = []
            for code in codes:
                count = size if isinstance(size, int) else size[code]
                registry = Registry(code, count, seed, overlap=overlap)
                if day:
                    registry.advance(day)
                registries.append(registry)
        self.app = NodeApp(registries, token=token, faults=faults, seed=seed)
        self.host = host
        self.port = port
        self.token = token
        self._warm = warm
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        if self._server is None:
            raise RuntimeError("the node is not started")
        return f"http://{self.host}:{self._server.server_port}"

    @property
    def faults(self) -> Faults:
        """The current faults (mutate through :meth:`set_faults`)."""
        return self.app.faults

    @property
    def registries(self) -> dict[str, Registry]:
        return self.app.registries

    def registry(self, programme: str | None = None) -> Registry:
        """The registry of `programme` (the only one when None)."""
        if programme is None:
            return next(iter(self.app.registries.values()))
        return self.app.registries[programme]

    def set_faults(self, faults: Mapping[str, Any] | str | None = None, /,
                   **values: Any) -> Faults:
        """Change some faults (others keep their values)."""
        updates = dict(Faults.parse(faults).as_dict()) if isinstance(faults, str) else dict(
            faults or {})
        updates.update(values)
        with self.app.lock:
            updated = Faults.parse(self.app.faults)
            updated.update(updates)
            self.app.faults = updated
        return updated

    def clear_faults(self) -> None:
        """Switch every fault off."""
        with self.app.lock:
            self.app.faults = Faults()

    def advance(self, days: int = 1, programme: str | None = None) -> list[Any]:
        """Churn every (or one) registry for `days` days."""
        with self.app.lock:
            codes = [programme] if programme else list(self.app.registries)
            return [c for code in codes for c in self.app.registries[code].advance(days)]

    def apply(self, kind: str, trader_id: str | None = None, component: str | None = None,
              programme: str | None = None) -> Any:
        """Make one change now (e.g. ``apply("suspend", eori, "AEOS")``)."""
        with self.app.lock:
            return self.registry(programme).apply(kind, trader_id, component)

    def start(self) -> NodeServer:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        if self._warm:
            self.app.warm()
        self._server = make_server(self.host, self.port, self.app, threaded=True,
                                   request_handler=_QuietHandler)
        # A short poll interval lets `stop()` return promptly (the default waits 0.5 s).
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name=f"aeo-node-{self._server.server_port}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> NodeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_node_server(programmes: Sequence[str], *, host: str = "127.0.0.1", port: int = 8700,
                    size: int = 1000, seed: int = 1, day: int = 0,
                    token: str | None = DEFAULT_TOKEN,
                    faults: Faults | Mapping[str, Any] | str | None = None,
                    echo: Callable[[str], None] = print) -> None:
    """Run a node in the foreground until interrupted."""
    node = NodeServer(programmes, size=size, seed=seed, day=day, token=token, faults=faults,
                      host=host, port=port)
    node.start()
    echo(f"AEO node for {', '.join(programmes)} on {node.url} "
         f"(token: {token or 'none'}); Ctrl+C to stop")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        node.stop()
