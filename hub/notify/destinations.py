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

`resolve_destination` adds the rules of a deployment, at subscription and before every
delivery, and gives the delivery the address to connect to:
- production: https only, and every address the host resolves to must be public, or lie
  in a network of `WEBHOOK_PRIVATE_NETWORKS_ALLOWED` (an agency's receivers on a private
  network), even for a host named exactly;
- every profile: never the hub's own port (`ISSUER`) or the database's (`DATABASE_URL`)
  on their addresses, loopback included: the embedded profile allows loopback receivers,
  but not those two;
- the address is resolved once and the delivery connects to it (pinned), so a name that
  resolves differently a moment later (DNS rebinding) cannot redirect the post.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

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
    # Production rules (https only, public addresses unless in these networks).
    production: bool = False
    private_networks: tuple[str, ...] = ()
    # (host, port) of the hub and its database: never a destination.
    forbidden: tuple[tuple[str, int], ...] = ()

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
            production=config.get("ENV") == "production",
            private_networks=tuple(str(n) for n in
                                   config.get("WEBHOOK_PRIVATE_NETWORKS_ALLOWED") or ()),
            forbidden=_own_endpoints(config),
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


def _own_endpoints(config: Mapping[str, Any]) -> tuple[tuple[str, int], ...]:
    """The hub's own address and its database's, as (host, port)."""
    endpoints = []
    issuer = urlsplit(str(config.get("ISSUER") or "http://127.0.0.1:5000"))
    if issuer.hostname:
        endpoints.append((issuer.hostname,
                          issuer.port or (443 if issuer.scheme == "https" else 80)))
    database = make_url(str(config.get("DATABASE_URL") or "sqlite://"))
    if database.get_backend_name() == "postgresql":
        endpoints.append((database.host or "localhost", database.port or 5432))
    return tuple(endpoints)


@dataclass(frozen=True)
class Destination:
    """A webhook URL that passed the rules, with the address the delivery connects to."""

    url: str
    scheme: str
    host: str
    port: int
    address: str
    target: str  # path and query, as sent

    @property
    def host_header(self) -> str:
        default = 443 if self.scheme == "https" else 80
        name = f"[{self.host}]" if ":" in self.host else self.host
        return name if self.port == default else f"{name}:{self.port}"


def _addresses(host: str, port: int) -> list[str]:
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        return _resolve(host, port)


def _same_place(address: str, other: str) -> bool:
    mine, theirs = ipaddress.ip_address(address), ipaddress.ip_address(other)
    return mine == theirs or (mine.is_loopback and theirs.is_loopback)


def resolve_destination(url: str, settings: WebhookSettings) -> Destination:
    """The destination of `url` under every rule (see the module), resolved once; raises
    `DestinationRefused` naming the rule."""
    check_url(url, settings.hosts_allowed, resolve=False)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".").lower()
    port = parts.port or (443 if scheme == "https" else 80)
    if settings.production and scheme != "https":
        raise DestinationRefused("webhooks are delivered over https only")
    addresses = _addresses(host, port)
    if not addresses:
        raise DestinationRefused(f"host {host!r} does not resolve")
    networks = [ipaddress.ip_network(n, strict=False) for n in settings.private_networks]
    named = host in settings.hosts_allowed or f"{host}:{port}" in settings.hosts_allowed
    for address in addresses:
        ip = ipaddress.ip_address(address)
        allowed = _is_public(address) or any(ip in net for net in networks) or (
            named and not settings.production)
        if not allowed:
            raise DestinationRefused(
                f"host {host!r} resolves to the internal address {address}; name its network "
                "in WEBHOOK_PRIVATE_NETWORKS_ALLOWED to allow it")
        for own_host, own_port in settings.forbidden:
            if port == own_port and any(_same_place(address, own)
                                        for own in _addresses_or_none(own_host, own_port)):
                raise DestinationRefused(
                    f"{address}:{port} is the hub's own or its database's address")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return Destination(url, scheme, host, port, addresses[0], target)


def _addresses_or_none(host: str, port: int) -> list[str]:
    try:
        return _addresses(host, port)
    except DestinationRefused:
        return []
