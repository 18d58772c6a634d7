"""The webhook subscription API, the signature helpers and the destination rules."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from hub import clock
from hub.audit.models import AuditEntry
from hub.notify import signing
from hub.notify.destinations import DestinationRefused, WebhookSettings, check_url
from hub.notify.models import WebhookDelivery, WebhookSubscription
from tests.notify.conftest import deliver_until, partner, subscribe

LOOPBACK = ("127.0.0.1", "localhost")


def test_sign_and_verify() -> None:
    body = b'{"id":"evt_1","type":"operator.suspended"}'
    header = signing.signature_header("whsec_x", body, timestamp=1_700_000_000)
    headers = {"aeohub-signature": header}  # any case
    assert signing.verify("whsec_x", headers, body, now=1_700_000_100) == 1_700_000_000
    for secret, data, now, why in (
        ("whsec_y", body, 1_700_000_000, "does not match"),
        ("whsec_x", body + b" ", 1_700_000_000, "does not match"),
        ("whsec_x", body, 1_700_000_301, "replay"),
        ("whsec_x", body, 1_699_999_699, "replay"),
    ):
        with pytest.raises(signing.SignatureError, match=why):
            signing.verify(secret, headers, data, now=now)
    with pytest.raises(signing.SignatureError, match="no AEOHub-Signature"):
        signing.verify("whsec_x", {}, body)
    with pytest.raises(signing.SignatureError):
        signing.verify("whsec_x", {"AEOHub-Signature": "t=abc,v1=00"}, body)
    # During a rotation a second v1 may come along; either one matching is enough.
    rotated = f"{header},v1={'0' * 64}"
    assert signing.verify("whsec_x", {"AEOHub-Signature": rotated}, body,
                          now=1_700_000_000)


def test_destinations() -> None:
    assert check_url("http://127.0.0.1:9000/hook", LOOPBACK)
    assert check_url("https://hooks.cbp.example:8443/x", ("hooks.cbp.example:8443",))
    refused = [
        ("http://10.0.0.5/hook", LOOPBACK),  # internal, not configured
        ("http://example.com/hook", LOOPBACK),
        ("ftp://127.0.0.1/hook", LOOPBACK),
        ("http://user:pw@127.0.0.1/hook", LOOPBACK),
        ("http://8.8.8.8/hook", ("*",)),  # a pattern needs https
        ("https://127.0.0.1/hook", ("*",)),  # a pattern never reaches internal hosts
        ("https://169.254.169.254/latest", ("*",)),
        ("https://localhost/hook", ("*.localhost", "*")),
        ("https://evil.example/hook", ("*.partner.example",)),
    ]
    for url, hosts in refused:
        with pytest.raises(DestinationRefused):
            check_url(url, hosts)
    assert check_url("https://8.8.8.8/hook", ("*",))
    settings = WebhookSettings.from_config({"SECRET_KEY": "k", "NODE_HOSTS_ALLOWED": ["a"]})
    assert settings.hosts_allowed == ("a",)
    assert [settings.retry_delay(n) for n in (1, 2, 3)] == [5.0, 10.0, 20.0]
    assert settings.retry_delay(30) == 3600.0


def test_subscription_crud(ref_app, client, committed_db, receiver, worker):
    headers = partner(committed_db, "US-CTPAT")
    other = partner(committed_db, "JP-AEO")
    created = client.post("/api/v1/webhooks", headers=headers, json={
        "url": receiver.url, "events": ["operator.suspended"], "description": "risk engine"})
    assert created.status_code == 201
    body = created.get_json()
    sub_id, secret = body["id"], body["secret"]
    assert secret.startswith("whsec_") and created.headers["Location"].endswith(sub_id)
    shown = client.get(f"/api/v1/webhooks/{sub_id}", headers=headers).get_json()
    assert "secret" not in shown and shown["status"] == "active"
    with committed_db.session_scope() as session:
        stored = session.scalars(select(WebhookSubscription)).one()
        assert secret not in stored.secret_encrypted  # encrypted at rest
    listed = client.get("/api/v1/webhooks", headers=headers).get_json()["subscriptions"]
    assert [s["id"] for s in listed] == [sub_id]
    # Another client neither sees nor changes it.
    assert client.get("/api/v1/webhooks", headers=other).get_json()["subscriptions"] == []
    assert client.get(f"/api/v1/webhooks/{sub_id}", headers=other).status_code == 404
    assert client.delete(f"/api/v1/webhooks/{sub_id}", headers=other).status_code == 404
    changed = client.patch(f"/api/v1/webhooks/{sub_id}", headers=headers,
                           json={"events": ["operator.revoked", "operator.suspended"]})
    assert changed.get_json()["events"] == ["operator.revoked", "operator.suspended"]
    # A ping reaches the receiver signed with the (rotated) secret.
    rotated = client.post(f"/api/v1/webhooks/{sub_id}/rotate-secret", headers=headers)
    receiver.secret = rotated.get_json()["secret"]
    assert receiver.secret != secret
    ping = client.post(f"/api/v1/webhooks/{sub_id}/ping", headers=headers)
    assert ping.status_code == 202
    assert deliver_until(worker, receiver, lambda r: len(r.accepted()) == 1)
    assert receiver.accepted()[0]["type"] == "webhook.ping"
    deleted = client.delete(f"/api/v1/webhooks/{sub_id}", headers=headers)
    assert deleted.status_code == 204 and deleted.data == b""
    assert "Content-Type" not in deleted.headers
    assert client.get(f"/api/v1/webhooks/{sub_id}", headers=headers).status_code == 404
    with committed_db.session_scope() as session:
        assert session.scalars(select(WebhookDelivery)).all() == []


def test_subscription_input_is_checked(ref_app, client, committed_db):
    headers = partner(committed_db, "US-CTPAT")
    bad = client.post("/api/v1/webhooks", headers=headers, json={
        "url": "http://10.1.2.3/hook", "events": ["operator.suspended", "operator.nope"]})
    assert bad.status_code == 400 and bad.mimetype == "application/problem+json"
    assert sorted(e["field"] for e in bad.get_json()["errors"]) == ["events", "url"]
    assert client.post("/api/v1/webhooks", headers=headers,
                       json={"url": "http://127.0.0.1/x", "events": []}).status_code == 400
    no_scope = partner(committed_db, "US-CTPAT", "verify")
    assert client.get("/api/v1/webhooks", headers=no_scope).status_code == 403
    assert client.get("/api/v1/webhooks").status_code == 401
    types = client.get("/api/v1/webhooks/event-types", headers=headers).get_json()["events"]
    assert "operator.suspended" in types and "sync.failed" not in types
    node_admin = partner(committed_db, "EU-AEO", "webhooks,node:admin")
    types = client.get("/api/v1/webhooks/event-types", headers=node_admin).get_json()
    assert "sync.failed" in types["events"]


def test_cli_lists_and_resumes(ref_app, client, committed_db, receiver):
    sub_id = subscribe(client, partner(committed_db, "US-CTPAT"), receiver,
                       ["operator.suspended"])
    with committed_db.session_scope(write=True) as session:
        sub = session.scalars(select(WebhookSubscription)).one()
        sub.status, sub.paused_reason, sub.paused_at = "paused", "too many failures", clock.now()
    runner = ref_app.test_cli_runner()
    listed = runner.invoke(args=["webhooks", "list"])
    assert listed.exit_code == 0 and sub_id in listed.output
    assert "too many failures" in listed.output
    resumed = runner.invoke(args=["webhooks", "resume", sub_id])
    assert resumed.exit_code == 0, resumed.output
    with committed_db.session_scope() as session:
        assert session.scalars(select(WebhookSubscription.status)).one() == "active"
    worker = runner.invoke(args=["worker", "--once"])
    assert worker.exit_code == 0, worker.output


def test_metrics_and_audit_entries(ref_app, client, committed_db, receiver, worker):
    headers = partner(committed_db, "US-CTPAT")
    sub_id = subscribe(client, headers, receiver, ["operator.suspended"])
    client.post(f"/api/v1/webhooks/{sub_id}/ping", headers=headers)
    assert deliver_until(worker, receiver, lambda r: len(r.accepted()) == 1)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'aeohub_webhook_queue{event_type="webhook.ping",status="delivered"} 1.0' in text
    assert 'aeohub_webhook_attempts_total{outcome="success"} 1.0' in text
    assert 'aeohub_webhook_subscriptions{status="active"} 1.0' in text
    with committed_db.session_scope() as session:
        actions = session.scalars(select(AuditEntry.action)).all()
    assert "webhook.created" in actions
