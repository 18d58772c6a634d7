"""Where webhooks may go under a deployment's rules, and the delivery's pinned address.

Production: https only, public addresses unless a configured private network holds them.
Every profile: never the hub's own port or its database's, loopback included. The post
connects to the address resolved when the URL was checked, never to a new resolution, and
a redirect is an answer, not followed.
"""

from __future__ import annotations

from typing import Any

import pytest

from hub.notify import delivery
from hub.notify.destinations import (
    Destination,
    DestinationRefused,
    WebhookSettings,
    resolve_destination,
)
from tests.notify.receiver import running_receiver

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/hub"


def _settings(**config: Any) -> WebhookSettings:
    return WebhookSettings.from_config({"SECRET_KEY": "k", **config})


def test_production_delivers_over_https_to_public_addresses_only():
    rules = {"ENV": "production", "DATABASE_URL": PG, "ISSUER": "https://hub.example.org",
             "WEBHOOK_HOSTS_ALLOWED": ["10.1.2.3", "8.8.8.8", "localhost"]}
    settings = _settings(**rules)
    with pytest.raises(DestinationRefused, match="https only"):
        resolve_destination("http://8.8.8.8/hook", settings)
    assert resolve_destination("https://8.8.8.8/hook", settings).address == "8.8.8.8"
    # A host named exactly is not enough for an internal address in production.
    for url in ("https://10.1.2.3/hook", "https://localhost/hook"):
        with pytest.raises(DestinationRefused, match="internal address"):
            resolve_destination(url, settings)
    agency = _settings(**rules, WEBHOOK_PRIVATE_NETWORKS_ALLOWED=["10.0.0.0/8"])
    pinned = resolve_destination("https://10.1.2.3:8443/hooks?x=1", agency)
    assert (pinned.address, pinned.port, pinned.target) == ("10.1.2.3", 8443, "/hooks?x=1")
    assert pinned.host_header == "10.1.2.3:8443"


def test_the_demo_allows_loopback_but_not_the_hubs_or_the_databases_port():
    settings = _settings(DATABASE_URL=PG, ISSUER="http://127.0.0.1:5000",
                         NODE_HOSTS_ALLOWED=["127.0.0.1", "localhost", "127.0.0.2"])
    for url in ("http://127.0.0.1:5432/", "http://localhost:5432/x", "http://127.0.0.2:5432/",
                "http://127.0.0.1:5000/api/v1/admin/clients", "http://localhost:5000/"):
        with pytest.raises(DestinationRefused, match="hub's own or its database's"):
            resolve_destination(url, settings)
    assert resolve_destination("http://127.0.0.1:9000/hook", settings).address == "127.0.0.1"


def test_the_post_goes_to_the_pinned_address_and_does_not_follow_redirects():
    with running_receiver() as receiver:
        receiver.secret = "whsec_test"
        port = int(receiver.url.rsplit(":", 1)[1].split("/", 1)[0])
        # A name that does not resolve at all: only the pinned address can reach it.
        pinned = Destination(url=f"http://receiver.invalid:{port}/hooks/aeo", scheme="http",
                             host="receiver.invalid", port=port, address="127.0.0.1",
                             target="/hooks/aeo")
        status, _excerpt = delivery.post(pinned, receiver.secret, "evt_1", "operator.updated",
                                         b'{"id":"evt_1"}', 1, 5.0)
        assert status == 204
        assert receiver.requests[0].headers["Host"] == f"receiver.invalid:{port}"
        assert receiver.requests[0].verified
        receiver.fail_next(1, status=302)
        status, _excerpt = delivery.post(pinned, receiver.secret, "evt_2", "operator.updated",
                                         b'{"id":"evt_2"}', 1, 5.0)
        assert status == 302  # an answer: the delivery fails and is retried, not redirected
        assert len(receiver.requests) == 2
