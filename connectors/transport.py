"""HTTP for connectors: retries with back-off, 429 handling, a rate cap, checked redirects.

Public registries are slow and fragile (the EU EORI service allows 100 requests a second
and has outages), so every connector that speaks HTTP goes through `HttpClient`:

- each URL, and each redirect hop (requests never follows redirects on its own here), is
  checked with `ConnectorContext.check_url`;
- 5xx answers, connection errors, timeouts and (for JSON) truncated or invalid bodies are
  retried with exponential back-off and full jitter, at most ``max_retries`` times;
- ``timeout`` bounds each wait for the server; a JSON document must also arrive whole
  within ``DOCUMENT_TIMEOUTS`` times that (a server sending a byte now and then would
  otherwise hold a sync for ever) and be at most ``MAX_DOCUMENT_BYTES`` long;
- ``429 Too Many Requests`` is honoured: the client sleeps for ``Retry-After`` (seconds or
  an HTTP date) unless that exceeds ``max_retry_after``, in which case it gives up;
- requests are spaced so that at most ``rate_limit`` start per second;
- the bearer token goes in a header only, never in a URL, log line or message, and is
  sent only to the origin it was configured for.
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from connectors.base import (
    AuthenticationFailed,
    ConnectorContext,
    FormatError,
    SourceUnavailable,
)

__all__ = ["HttpClient", "RetryPolicy", "parse_retry_after"]

MAX_REDIRECTS = 5
#: a JSON document must arrive whole within this many `timeout`s
DOCUMENT_TIMEOUTS = 6
#: the largest JSON document read (a page of 5,000 records is a few MB)
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


class RetryPolicy:
    """How often and how long to retry; see the module docstring."""

    def __init__(
        self,
        *,
        max_retries: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_retry_after: float = 120.0,
    ) -> None:
        self.max_retries = max_retries  # retries after the first attempt
        self.backoff_base = backoff_base  # seconds; attempt n waits up to base * 2**n
        self.backoff_cap = backoff_cap  # no single back-off exceeds this
        self.max_retry_after = max_retry_after  # a longer Retry-After means "give up"

    def backoff(self, retry: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**retry)]."""
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * (2**retry)))


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.fromtimestamp(now if now is not None else time.time(), UTC)
    return max(0.0, (when - current).total_seconds())


class _RateCap:
    """Spaces request starts at least ``1/rate`` seconds apart (a one-token bucket)."""

    def __init__(self, rate: float | None, sleep: Callable[[float], None]) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self._sleep = sleep

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self._sleep(start - now)


class _Retry(Exception):
    """Internal: this attempt failed in a way worth retrying."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait = wait


class HttpClient:
    """A requests session with the hub's retry, rate and access rules. Close it after use."""

    def __init__(
        self,
        context: ConnectorContext,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        rate_limit: float | None = None,
        verify_tls: bool = True,
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.context = context
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._token = token
        self._token_origin: tuple[str, str, int | None] | None = None
        self._sleep = sleep
        self._rate = _RateCap(rate_limit, sleep)
        self.session = requests.Session()
        self.session.verify = verify_tls
        self.session.trust_env = False  # no proxies or netrc credentials from the environment
        self.session.headers["User-Agent"] = context.user_agent
        self.session.headers.update(headers or {})
        self.attempts = 0  # requests sent, retries included (for tests and run stats)

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def bind_token(self, base_url: str) -> None:
        """Send the bearer token only to the origin of ``base_url``."""
        self._token_origin = _origin(base_url)

    # -- requests -------------------------------------------------------------------

    def get(
        self, url: str, params: Mapping[str, Any] | None = None, *, stream: bool = False,
        accept: str | None = None,
    ) -> requests.Response:
        """GET with retries; returns a 2xx response (the caller closes it)."""
        response: requests.Response = self._with_retries(url, lambda r: r, params=params,
                                                         stream=stream, accept=accept)
        return response

    def get_json(
        self, url: str, params: Mapping[str, Any] | None = None
    ) -> Any:
        """GET a JSON document; truncated or invalid JSON bodies are retried."""

        def parse(response: requests.Response) -> Any:
            try:
                return json.loads(self._document(url, response))
            except requests.exceptions.RequestException as exc:
                raise _Retry(f"the body of {_path(url)} was cut short ({type(exc).__name__})") \
                    from exc
            except ValueError as exc:
                raise _Retry(f"{_path(url)} answered invalid or truncated JSON ({exc})") from exc
            finally:
                response.close()

        return self._with_retries(url, parse, params=params, stream=True, accept="application/json")

    def _document(self, url: str, response: requests.Response) -> bytes:
        """The whole body, read within `DOCUMENT_TIMEOUTS` timeouts and at most
        `MAX_DOCUMENT_BYTES` (a body cut short raises requests' error)."""
        deadline = time.monotonic() + DOCUMENT_TIMEOUTS * self.timeout
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(64 * 1024):
            size += len(chunk)
            if size > MAX_DOCUMENT_BYTES:
                raise FormatError(f"{_path(url)} answered more than "
                                  f"{MAX_DOCUMENT_BYTES:,} bytes")
            if time.monotonic() > deadline:
                raise _Retry(f"{_path(url)} did not send its whole answer within "
                             f"{DOCUMENT_TIMEOUTS * self.timeout:g} s")
            chunks.append(chunk)
        return b"".join(chunks)

    def _with_retries(
        self,
        url: str,
        handle: Callable[[requests.Response], Any],
        *,
        params: Mapping[str, Any] | None,
        stream: bool,
        accept: str | None,
    ) -> Any:
        log = self.context.logger
        last = ""
        for attempt in range(self.retry.max_retries + 1):
            try:
                response = self._send(url, params, stream=stream, accept=accept)
                self._raise_for_status(url, response)
                return handle(response)
            except _Retry as exc:
                last = exc.reason
                if attempt >= self.retry.max_retries:
                    break
                wait = exc.wait if exc.wait is not None else self.retry.backoff(attempt)
                log.warning(
                    "%s; retry %d of %d in %.2f s", exc.reason, attempt + 1,
                    self.retry.max_retries, wait,
                )
                self._sleep(wait)
        raise SourceUnavailable(
            f"{last}; gave up after {self.retry.max_retries + 1} attempts"
        )

    def _send(
        self, url: str, params: Mapping[str, Any] | None, *, stream: bool, accept: str | None
    ) -> requests.Response:
        """One attempt, following redirects by hand so that each hop is checked."""
        current = url
        current_params = dict(params) if params else None
        for _hop in range(MAX_REDIRECTS + 1):
            self.context.check_url(current)
            headers: dict[str, str] = {}
            if accept:
                headers["Accept"] = accept
            if self._token and self._token_origin == _origin(current):
                headers["Authorization"] = f"Bearer {self._token}"
            self._rate.wait()
            self.attempts += 1
            try:
                response = self.session.get(
                    current, params=current_params, headers=headers, timeout=self.timeout,
                    stream=True, allow_redirects=False,
                )
            except requests.exceptions.Timeout as exc:
                raise _Retry(f"{_path(current)} did not answer within {self.timeout} s") from exc
            except requests.exceptions.ConnectionError as exc:
                raise _Retry(
                    f"could not connect to {_netloc(current)} ({_short(exc)})"
                ) from exc
            if response.status_code in _REDIRECT_CODES and "Location" in response.headers:
                target = urljoin(response.url, response.headers["Location"])
                response.close()
                self.context.logger.debug("redirect %s -> %s", _path(current), _path(target))
                current, current_params = target, None  # the Location carries its own query
                continue
            if not stream:
                try:
                    _ = response.content
                except requests.exceptions.RequestException as exc:
                    response.close()
                    raise _Retry(f"the body of {_path(current)} was cut short") from exc
            return response
        raise SourceUnavailable(f"{_path(url)} redirected more than {MAX_REDIRECTS} times")

    def _raise_for_status(self, url: str, response: requests.Response) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        detail = _problem_detail(response)
        response.close()
        where = _path(url)
        if status == 429:
            wait = parse_retry_after(response.headers.get("Retry-After"))
            if wait is not None and wait > self.retry.max_retry_after:
                raise SourceUnavailable(
                    f"{where} answered 429 and asked to wait {wait:.0f} s, longer than "
                    f"max_retry_after ({self.retry.max_retry_after:.0f} s); try again later"
                )
            raise _Retry(f"{where} answered 429 (rate limited)", wait)
        if status >= 500:
            raise _Retry(f"{where} answered {status}{detail}")
        if status in (401, 403):
            what = "refused" if status == 401 else "not allowed to read this resource"
            raise AuthenticationFailed(
                f"node answered {status}: the bearer token was {what}; check the token "
                f"configured for this connection{detail}"
            )
        if status == 404:
            raise FormatError(
                f"{where} answered 404: the source does not serve this resource; "
                f"check the URL and programme{detail}"
            )
        raise FormatError(f"{where} answered {status}{detail}")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or (443 if scheme == "https" else 80)


def _path(url: str) -> str:
    """``GET /path`` for messages: no host, no query (queries may carry cursors)."""
    return f"GET {urlsplit(url).path or '/'}"


def _netloc(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{host}:{parts.port}" if parts.port else host


def _short(exc: BaseException) -> str:
    """A short cause for a connection error (urllib3's are very long)."""
    text = str(exc)
    for marker in ("Connection refused", "Name or service not known", "timed out",
                   "CERTIFICATE_VERIFY_FAILED", "Connection reset", "Remote end closed"):
        if marker in text:
            return marker
    return type(exc).__name__


def _problem_detail(response: requests.Response) -> str:
    """``": <title/detail>"`` from a problem+json body, if there is a short one."""
    try:
        if "json" not in response.headers.get("Content-Type", ""):
            return ""
        body = json.loads(response.content[:4096])
    except (ValueError, requests.exceptions.RequestException):
        return ""
    if not isinstance(body, dict):
        return ""
    text = body.get("detail") or body.get("title")
    return f" ({str(text)[:200]})" if text else ""
