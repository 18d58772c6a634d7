"""The delivery worker (`aeohub worker`): dispatches events and posts deliveries.

Its own process, like the scheduler, never a web worker. Every `poll_seconds` it runs
the dispatcher (events from the change feed and sync runs) and claims the deliveries that
are due; a thread pool posts them, so one slow receiver does not hold up the others.
Several workers may run against one database: claims and the dispatcher's cursor checks
keep each event queued once and each attempt made once.
"""

from __future__ import annotations

import logging
import signal
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from flask import Flask

from hub.db import Database, get_db
from hub.notify import delivery, events
from hub.notify.destinations import WebhookSettings

log = logging.getLogger(__name__)


class DeliveryWorker:
    def __init__(self, app: Flask, *, poll_seconds: float = 0.5, threads: int = 8) -> None:
        self.app = app
        self.database: Database = get_db(app)
        self.settings = WebhookSettings.from_config(app.config)
        self.poll_seconds = poll_seconds
        self.threads = max(1, threads)
        self.pool = ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="webhook")
        self.in_flight: set[Future[object]] = set()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        # Longer than any attempt can take, so a live worker never loses its claim.
        self.lock_seconds = self.settings.timeout * 2 + 30

    def _done(self, future: Future[object]) -> None:
        with self.lock:
            self.in_flight.discard(future)
        if future.exception() is not None:
            log.error("a webhook delivery crashed", exc_info=future.exception())

    def deliver_due(self) -> int:
        """Claim what is due (as many as there are free threads) and post it."""
        with self.lock:
            room = self.threads * 2 - len(self.in_flight)
        claimed = delivery.claim_due(self.database, room, self.lock_seconds)
        for delivery_id in claimed:
            future: Future[object] = self.pool.submit(
                delivery.attempt, self.database, self.settings, delivery_id)
            with self.lock:
                self.in_flight.add(future)
            future.add_done_callback(self._done)
        return len(claimed)

    def tick(self) -> int:
        """One round: queue new events, start due deliveries; returns deliveries started."""
        try:
            events.dispatch(self.database)
        except Exception:
            log.exception("the webhook dispatcher failed; retrying next round")
        return self.deliver_due()

    def drain(self, timeout: float = 30.0) -> None:
        """Wait for the deliveries in flight (tests and `--once`)."""
        with self.lock:
            pending = list(self.in_flight)
        for future in pending:
            future.result(timeout)

    def run_once(self) -> None:
        """Dispatch, then deliver everything due now (retries that are due included)."""
        events.dispatch(self.database)
        while self.deliver_due():
            self.drain()
        self.drain()

    def run_forever(self) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        try:
            while not self.stopping.is_set():
                started = self.tick()
                # Busy: look again at once; idle: wait for the next poll.
                if not started:
                    self.stopping.wait(self.poll_seconds)
                else:
                    self.stopping.wait(min(self.poll_seconds, 0.05))
        except KeyboardInterrupt:
            pass
        finally:
            self.close()

    def close(self) -> None:
        self.pool.shutdown(wait=True)
