"""Where webhooks may be delivered, and the delivery settings taken from the configuration.

A webhook URL, like a connection URL, may only name a host the hub's configuration
allows, so that nobody can make the hub post to its own database port or to a host on
the internal network:

- `WEBHOOK_HOSTS_ALLOWED` (default: `NODE_HOSTS_ALLOWED`, i.e. loopback in the embedded
  profile and nothing in production) lists `host`, `host:port`, `*.domain` or `*`;
- a host named exactly (or with its port) is allowed as configured, over http or https;
- a host allowed only by a pattern (`*.partner.example`, `*`) must use https and resolve
  to public addresses only: loopback, private, link-local and reserved addresses are
  refused, at subscription time and again before every delivery.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

from hub.sync.secrets import fernet_for


class DestinationRefused(ValueError):
    """A webhook URL the configuration does not allow."""


@dataclass(frozen=True)
class WebhookSettings:
    """The delivery settings of the hub (from `app.config`)."""

    fernet: Fernet
    hosts_allowed: tuple[str, ...]
    timeout: float = 5.0
    retry_base: float = 5.0
    retry_max: float = 3600.0
    max_attempts: int = 12
    pause_after: int = 20

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> WebhookSettings:
        hosts = config.get("WEBHOOK_HOSTS_ALLOWED")
        if hosts is None:
            hosts = config.get("NODE_HOSTS_ALLOWED") or ()
        return cls(
            fernet=fernet_for(config.get("ENCRYPTION_KEY"), config["SECRET_KEY"]),
            hosts_allowed=tuple(str(h).strip().lower() for h in hosts if str(h).strip()),
            timeout=float(config.get("WEBHOOK_TIMEOUT_SECONDS", 5.0)),
            retry_base=float(config.get("WEBHOOK_RETRY_BASE_SECONDS", 5.0)),
            retry_max=float(config.get("WEBHOOK_RETRY_MAX_SECONDS", 3600.0)),
            max_attempts=int(config.get("WEBHOOK_MAX_ATTEMPTS", 12)),
            pause_after=int(config.get("WEBHOOK_PAUSE_AFTER_FAILURES", 20)),
        )

    def retry_delay(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failed try (exponential, capped)."""
        return float(min(self.retry_base * (2 ** max(attempts - 1, 0)), self.retry_max))


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    return bool(ip.is_global) and not ip.is_multicast


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DestinationRefused(f"host {host!r} does not resolve") from exc
    return sorted({str(info[4][0]) for info in infos})


def check_url(url: str, hosts_allowed: tuple[str, ...], *, resolve: bool = True) -> str:
    """Return `url` if webhooks may be posted to it; raise `DestinationRefused` if not."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DestinationRefused("the URL is malformed") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise DestinationRefused(f"scheme {scheme or '(none)'!r} is not allowed; use https")
    if parts.username or parts.password:
        raise DestinationRefused("the URL must not carry credentials")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise DestinationRefused("the URL names no host")
    port = port or (443 if scheme == "https" else 80)
    if host in hosts_allowed or f"{host}:{port}" in hosts_allowed:
        return url
    patterns = [p for p in hosts_allowed if p == "*" or p.startswith("*.")]
    matched = any(p == "*" or host.endswith(p[1:]) for p in patterns)
    if not matched:
        shown = ", ".join(hosts_allowed) or "none"
        raise DestinationRefused(f"host {host!r} is not among the hosts webhooks may reach "
                                 f"({shown}; set AEOHUB_WEBHOOK_HOSTS_ALLOWED)")
    if scheme != "https":
        raise DestinationRefused("a host allowed by a pattern must be reached over https")
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None and not _is_public(host):
        raise DestinationRefused(f"address {host} is internal; name it in "
                                 "WEBHOOK_HOSTS_ALLOWED to allow it")
    if literal is None and resolve:
        internal = [a for a in _resolve(host, port) if not _is_public(a)]
        if internal:
            raise DestinationRefused(f"host {host!r} resolves to internal address(es) "
                                     f"{', '.join(internal)}")
    return url
