"""A partner's webhook receiver: a real HTTP server on loopback that checks signatures.

It verifies every request with `hub.notify.signing.verify` (the code a partner would
run), answers 400 to a bad signature, and otherwise 204, unless a test scripted failures
(`fail_next(n, status)`). Every request is kept in `requests` with what the check said.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from hub.notify import signing
from tests.serving import serving


@dataclass
class Received:
    at: float
    headers: dict[str, str]
    body: bytes
    verified: bool
    error: str | None
    status: int

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


@dataclass
class Receiver:
    secret: str = ""
    tolerance: int = 300
    url: str = ""
    requests: list[Received] = field(default_factory=list)
    failures: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def fail_next(self, count: int, status: int = 500) -> None:
        with self.lock:
            self.failures.extend([status] * count)

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        try:
            signing.verify(self.secret, headers, body, tolerance=self.tolerance)
            verified, error = True, None
        except signing.SignatureError as exc:
            verified, error = False, str(exc)
        with self.lock:
            status = 400 if not verified else (self.failures.pop(0) if self.failures else 204)
            self.requests.append(Received(time.monotonic(), headers, body, verified, error,
                                          status))
        with self.arrived:
            self.arrived.notify_all()
        return status

    def accepted(self) -> list[dict[str, Any]]:
        """The events the receiver accepted (verified and answered 2xx), in arrival order."""
        with self.lock:
            return [r.event for r in self.requests if r.verified and r.status < 300]

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.arrived.wait(min(left, 0.2))
        return True


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            status = receiver.handle(dict(self.headers.items()), body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@contextmanager
def running_receiver(path: str = "/hooks/aeo") -> Iterator[Receiver]:
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    with serving(server):
        yield receiver
