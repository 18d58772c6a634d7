"""Test servers served from a thread, started and stopped one way everywhere.

`socketserver`'s `serve_forever` checks for a shutdown request once per poll interval,
half a second by default, so every `shutdown()` waited for up to that long; with many
live-server tests that was minutes of the suite. A short interval makes stopping prompt.
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: seconds between `serve_forever`'s checks for a shutdown request
POLL_INTERVAL = 0.02


@contextmanager
def serving(server: socketserver.BaseServer) -> Iterator[None]:
    """Serve `server` from a daemon thread until the block ends, then close it."""
    thread = threading.Thread(target=server.serve_forever, args=(POLL_INTERVAL,),
                              name=f"test-server-{id(server):x}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
