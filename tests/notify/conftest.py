"""Fixtures of the webhook and node-push tests: reference data, a receiver, a worker."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from hub.auth import policy
from hub.db import Database
from hub.notify.worker import DeliveryWorker
from hub.registry.models import Operator
from hub.registry.service import RECORD_COLUMNS, OperatorData, apply_operator
from tests.auth.hubkit import bearer, load_reference, make_client, make_operator, programmes
from tests.notify.receiver import Receiver, running_receiver
from tests.waiting import wait_until


@pytest.fixture
def ref_app(app: Flask) -> Flask:
    load_reference(app.extensions["aeohub.db"])
    policy.clear_cache()
    app.config.update(WEBHOOK_RETRY_BASE_SECONDS=0.2, WEBHOOK_RETRY_MAX_SECONDS=1.0)
    return app


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as running:
        yield running


@pytest.fixture
def worker(ref_app: Flask) -> Iterator[DeliveryWorker]:
    running = DeliveryWorker(ref_app, poll_seconds=0.1, threads=4)
    yield running
    running.close()


def partner(database: Database, programme: str | None, scopes: str = "webhooks"
            ) -> dict[str, str]:
    """Bearer headers of a new client acting for `programme`."""
    return bearer(database, make_client(database, programme, scopes))


def subscribe(client: FlaskClient, headers: dict[str, str], receiver: Receiver,
              events: list[str]) -> str:
    response = client.post("/api/v1/webhooks", headers=headers,
                           json={"url": receiver.url, "events": events})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    receiver.secret = body["secret"]
    return str(body["id"])


def eu_operator(database: Database, unique: int, *, category: str = "AEOF",
                consent: bool = True) -> int:
    with database.session_scope(write=True) as session:
        return make_operator(session, programmes(session)["EU-AEO"], unique,
                             category=category, consent=consent)


def change(database: Database, operator_id: int, **values: Any) -> None:
    """Apply the operator's record with some values changed (as a sync would)."""
    with database.session_scope(write=True) as session:
        row = session.get(Operator, operator_id)
        assert row is not None
        record = {name: getattr(row, name) for name in RECORD_COLUMNS}
        if "status" in values:
            record["status_effective"] = dt.datetime.now(dt.UTC).date()
        record.update(values)
        apply_operator(session, row.programme,
                       OperatorData(stable_key=row.stable_key, values=record,
                                    identifiers=[(i.scheme, i.value, i.origin, i.linked)
                                                 for i in row.identifiers]))


def deliver_until(worker: DeliveryWorker, receiver: Receiver, predicate: Any,
                  timeout: float = 15.0) -> bool:
    """Run the worker's rounds until the receiver has seen what `predicate` wants."""

    def delivered() -> bool:
        worker.run_once()
        return bool(predicate(receiver))

    return wait_until(delivered, timeout, interval=0.1)
