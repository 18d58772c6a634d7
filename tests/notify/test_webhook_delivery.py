"""Webhooks end to end against a real receiver on loopback: signed, filtered by the
policy, retried, paused, in order per operator; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
import time

import requests
from sqlalchemy import select, update

from hub import versions
from hub.arrangements.models import Arrangement
from hub.arrangements.service import change_status
from hub.auth import policy
from hub.notify import signing, views
from hub.notify.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from hub.notify.worker import DeliveryWorker
from tests.auth.hubkit import set_consent
from tests.notify.conftest import change, deliver_until, eu_operator, partner, subscribe
from tests.notify.receiver import running_receiver

ALL_OPERATOR_EVENTS = ["operator.created", "operator.suspended", "operator.reinstated",
                       "operator.revoked", "operator.removed", "operator.no_longer_shared"]


def test_suspension_is_delivered_signed(ref_app, client, committed_db, receiver, worker):
    us = partner(committed_db, "US-CTPAT")
    subscribe(client, us, receiver, ["operator.suspended", "operator.reinstated"])
    op = eu_operator(committed_db, 1)
    change(committed_db, op, status="suspended")
    assert deliver_until(worker, receiver, lambda r: len(r.accepted()) == 1)
    event = receiver.accepted()[0]
    assert event["type"] == "operator.suspended"
    assert event["data"]["operator_id"] == op
    assert event["data"]["operator"]["status"] == "suspended"
    assert event["data"]["changes"]["status"] == "suspended"
    received = receiver.requests[0]
    assert received.verified and received.headers["AEOHub-Event-Id"] == event["id"]
    assert received.headers["AEOHub-Event-Type"] == "operator.suspended"
    # Nothing the partner may not see: consent flags and bookkeeping stay in the hub.
    for hidden in ("consent_share", "consent_publish", "fingerprint", "warnings"):
        assert hidden not in event["data"]["operator"]


def test_receiver_refuses_tampered_body_and_old_timestamp(ref_app, client, committed_db,
                                                          receiver, worker):
    us = partner(committed_db, "US-CTPAT")
    subscribe(client, us, receiver, ["operator.suspended"])
    change(committed_db, eu_operator(committed_db, 2), status="suspended")
    assert deliver_until(worker, receiver, lambda r: len(r.accepted()) == 1)
    original = receiver.requests[0]
    headers = {k: v for k, v in original.headers.items()
               if k.lower().startswith("aeohub-") or k.lower() == "content-type"}
    tampered = original.body.replace(b'"suspended"', b'"valid"', 1)
    assert tampered != original.body
    with requests.post(receiver.url, data=tampered, headers=headers, timeout=5) as answer:
        assert answer.status_code == 400
    assert "does not match" in (receiver.requests[-1].error or "")
    # A replay of the untouched delivery, signed long ago, is refused too.
    stamp, _ = signing.parse(headers["AEOHub-Signature"])
    stale = signing.signature_header(receiver.secret, original.body, stamp - 301)
    with requests.post(receiver.url, data=original.body,
                       headers={**headers, "AEOHub-Signature": stale}, timeout=5) as answer:
        assert answer.status_code == 400
    assert "replay" in (receiver.requests[-1].error or "")
    # The same check in code: later than the tolerance, a good signature is refused.
    later = time.time() + 301
    try:
        signing.verify(receiver.secret, original.headers, original.body, now=later)
    except signing.SignatureError:
        pass
    else:
        raise AssertionError("an old signature was accepted")


def test_no_out_of_scope_delivery_and_fields_filtered(ref_app, client, committed_db,
                                                      worker):
    with running_receiver() as us_hook, running_receiver() as in_hook:
        subscribe(client, partner(committed_db, "US-CTPAT"), us_hook, ALL_OPERATOR_EVENTS)
        # India's programme has no arrangement recognising EU AEOs.
        subscribe(client, partner(committed_db, "IN-AEO"), in_hook, ALL_OPERATOR_EVENTS)
        # Address no longer shared under EU-US (as if the arrangement said so).
        with committed_db.session_scope(write=True) as session:
            for arrangement in session.scalars(select(Arrangement)):
                if arrangement.code.startswith("EU-US"):
                    arrangement.data_fields = [f for f in arrangement.data_fields or []
                                               if f != "address"]
            versions.bump(session, versions.REFERENCE)
        policy.clear_cache()
        in_scope = eu_operator(committed_db, 3, category="AEOS")
        customs_only = eu_operator(committed_db, 4, category="AEOC")  # outside EU-US scope
        change(committed_db, in_scope, status="suspended")
        change(committed_db, customs_only, status="suspended")
        assert deliver_until(worker, us_hook, lambda r: len(r.accepted()) == 2)
        worker.run_once()
        events = us_hook.accepted()
        assert [(e["type"], e["data"]["operator_id"]) for e in events] == [
            ("operator.created", in_scope), ("operator.suspended", in_scope)]
        record = events[1]["data"]["operator"]
        assert "legal_name" in record
        assert not {"street", "city", "postcode", "country"} & set(record)
        assert in_hook.requests == []
        with committed_db.session_scope() as session:
            queued = session.scalars(select(WebhookDelivery.payload)).all()
        assert all(p["data"]["operator_id"] == in_scope for p in queued)


def test_consent_withdrawal_sends_no_longer_shared(ref_app, client, committed_db, receiver,
                                                   worker):
    op = eu_operator(committed_db, 5)
    subscribe(client, partner(committed_db, "JP-AEO"), receiver, ALL_OPERATOR_EVENTS)
    set_consent(committed_db, op, False)
    change(committed_db, op, status="revoked")  # no longer visible: never sent
    assert deliver_until(worker, receiver, lambda r: len(r.accepted()) >= 1)
    worker.run_once()
    events = receiver.accepted()
    assert [e["type"] for e in events] == ["operator.no_longer_shared"]
    data = events[0]["data"]
    assert data["operator_id"] == op and data["reason"] == "no_longer_shared"
    assert "operator" not in data and "changes" not in data


def test_retries_with_backoff_then_delivered(ref_app, client, committed_db, receiver, worker,
                                             clock):
    ref_app.config.update(WEBHOOK_RETRY_BASE_SECONDS=60, WEBHOOK_RETRY_MAX_SECONDS=3600)
    worker.settings = type(worker.settings).from_config(ref_app.config)
    subscribe(client, partner(committed_db, "US-CTPAT"), receiver, ["operator.suspended"])
    receiver.fail_next(2, status=503)
    change(committed_db, eu_operator(committed_db, 6), status="suspended")
    tries = []
    # A minute after the first failure, then two minutes after the second (the hub's clock).
    for seconds in (0, 50, 10, 110, 10):
        clock.advance(seconds)
        worker.run_once()
        tries.append(len(receiver.requests))
    assert tries == [1, 1, 2, 2, 3]
    ids = {r.headers["AEOHub-Event-Id"] for r in receiver.requests}
    assert len(ids) == 1 and len(receiver.accepted()) == 1  # one event, three tries
    with committed_db.session_scope() as session:
        attempts = session.scalars(select(WebhookAttempt).order_by(WebhookAttempt.id)).all()
        assert [(a.number, a.outcome, a.status_code) for a in attempts] == [
            (1, "failure", 503), (2, "failure", 503), (3, "success", 204)]
        delivery = session.scalars(select(WebhookDelivery)).one()
        assert delivery.status == "delivered" and delivery.attempts == 3


def test_failing_subscription_is_paused_then_resumed_in_order(ref_app, client, committed_db,
                                                              receiver, worker, clock):
    ref_app.config["WEBHOOK_PAUSE_AFTER_FAILURES"] = 3
    worker.settings = type(worker.settings).from_config(ref_app.config)
    headers = partner(committed_db, "US-CTPAT")
    sub_id = subscribe(client, headers, receiver, ["operator.suspended", "operator.revoked"])
    receiver.fail_next(100, status=500)
    op = eu_operator(committed_db, 7)
    change(committed_db, op, status="suspended")
    change(committed_db, op, status="revoked")
    for _ in range(3):  # three failed tries, each once the last one's retry is due
        worker.run_once()
        clock.advance(ref_app.config["WEBHOOK_RETRY_MAX_SECONDS"])
    shown = client.get(f"/api/v1/webhooks/{sub_id}", headers=headers).get_json()
    assert shown["status"] == "paused", shown
    assert "3 failed attempts" in shown["paused_reason"]
    tries = len(receiver.requests)
    assert tries == 3
    # Paused: nothing more is tried, long after any retry would be due, and the revocation
    # waits behind the suspension.
    clock.advance(10 * ref_app.config["WEBHOOK_RETRY_MAX_SECONDS"])
    worker.run_once()
    assert len(receiver.requests) == tries
    with receiver.lock:
        receiver.failures.clear()
    resumed = client.patch(f"/api/v1/webhooks/{sub_id}", headers=headers,
                           json={"active": True})
    assert resumed.status_code == 200 and resumed.get_json()["status"] == "active"
    assert deliver_until(worker, receiver, lambda r: len(r.accepted()) == 2)
    assert [e["type"] for e in receiver.accepted()] == ["operator.suspended",
                                                        "operator.revoked"]
    log = client.get(f"/api/v1/webhooks/{sub_id}/deliveries", headers=headers).get_json()
    suspended = next(d for d in log["deliveries"] if d["type"] == "operator.suspended")
    assert suspended["status"] == "delivered" and len(suspended["attempt_log"]) == 4


def test_per_operator_order_survives_retries(ref_app, client, committed_db, receiver, worker):
    subscribe(client, partner(committed_db, "US-CTPAT"), receiver,
              ["operator.suspended", "operator.reinstated", "operator.revoked"])
    first, second = eu_operator(committed_db, 8), eu_operator(committed_db, 9)
    receiver.fail_next(1)
    change(committed_db, first, status="suspended")
    change(committed_db, first, status="valid")
    change(committed_db, second, status="suspended")
    change(committed_db, first, status="revoked")
    assert deliver_until(worker, receiver, lambda r: len(r.accepted()) == 4)
    by_operator: dict[int, list[str]] = {}
    for event in receiver.accepted():
        by_operator.setdefault(event["data"]["operator_id"], []).append(event["type"])
    assert by_operator[first] == ["operator.suspended", "operator.reinstated",
                                  "operator.revoked"]
    assert by_operator[second] == ["operator.suspended"]
    assert len({e["id"] for e in receiver.accepted()}) == 4


def test_two_workers_queue_and_deliver_each_event_once(ref_app, client, committed_db,
                                                       receiver):
    subscribe(client, partner(committed_db, "US-CTPAT"), receiver, ["operator.suspended"])
    ops = [eu_operator(committed_db, 20 + i) for i in range(5)]
    for op in ops:
        change(committed_db, op, status="suspended")
    workers = [DeliveryWorker(ref_app, threads=2) for _ in range(2)]
    try:
        threads = [threading.Thread(target=w.run_once) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        deliver_until(workers[0], receiver, lambda r: len(r.accepted()) >= 5)
    finally:
        for w in workers:
            w.close()
    events = receiver.accepted()
    assert sorted(e["data"]["operator_id"] for e in events) == ops
    with committed_db.session_scope() as session:
        assert len(session.scalars(select(WebhookDelivery.id)).all()) == 5


def test_destination_refused_at_delivery_counts_as_failure(ref_app, client, committed_db,
                                                           receiver, worker):
    subscribe(client, partner(committed_db, "US-CTPAT"), receiver, ["operator.suspended"])
    with committed_db.session_scope(write=True) as session:
        session.execute(update(WebhookSubscription)
                        .values(url="http://169.254.169.254/latest/meta-data"))
    change(committed_db, eu_operator(committed_db, 10), status="suspended")
    worker.run_once()
    with committed_db.session_scope() as session:
        attempt = session.scalars(select(WebhookAttempt)).one()
    assert attempt.outcome == "failure" and "destination refused" in (attempt.error or "")
    assert receiver.requests == []


def test_suspended_arrangement_sends_no_longer_shared(ref_app, client, committed_db,
                                                      receiver, worker):
    views.run_daily(committed_db)  # the grants the scheduler announces at start-up
    op = eu_operator(committed_db, 11)
    subscribe(client, partner(committed_db, "US-CTPAT"), receiver, ALL_OPERATOR_EVENTS)
    watch = views.ReferenceWatch(committed_db)  # as the scheduler process runs it
    with committed_db.session_scope(write=True) as session:
        change_status(session, "EU-US", "suspend", dt.datetime.now(dt.UTC).date())
    policy.clear_cache()
    assert watch() is not None  # it sees the reference data change
    change(committed_db, op, status="suspended")  # no longer shared: never sent
    assert deliver_until(worker, receiver, lambda r: len(r.accepted()) >= 1)
    worker.run_once()
    events = receiver.accepted()
    assert [(e["type"], e["data"]["operator_id"]) for e in events] == [
        ("operator.no_longer_shared", op)]
    assert events[0]["data"]["arrangement"] == "EU-US"
    assert "operator" not in events[0]["data"]
