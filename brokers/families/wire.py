"""The HTTP transport every network broker family uses, and the mapping of its failures to the broker
contract's typed errors.

``WireClient.call(endpoint, ...)`` counts the request against the account's rate limits first (over
them: ``BrokerRateLimited``, not sent), sends it on the process's pooled connections, and hands the
answer to the family's ``answer(status, content_type, body)``, which returns the data or raises the
typed error its envelope means. Around that, the same rules hold for every family:

- nothing left the process (refused connection, DNS, connect or pool timeout) -> ``BrokerUnreachable``;
- the request may have reached the broker (a read or write timeout, a reset, a close after sending)
  -> ``BrokerUnavailable``: the order system marks the order UNKNOWN and reconciles it;
- HTTP 429 -> ``BrokerRateLimited`` whatever the body; a 5xx the family's envelope does not explain,
  or a body that is not JSON -> ``BrokerUnavailable``.

A read (``write=False``) whose connection could not be made is tried once more; a write never is.
``refusal(message)`` picks the most precise ``BrokerRejected`` a broker's message supports (margin,
market closed, segment, unknown order), the same words for every family.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import httpx
from django.conf import settings

from brokers.adapters.base import (
    BrokerError,
    BrokerInsufficientMargin,
    BrokerMarketClosed,
    BrokerOrderNotFound,
    BrokerRateLimited,
    BrokerRejected,
    BrokerSegmentNotEnabled,
    BrokerUnavailable,
    BrokerUnreachable,
)
from brokers.rate_limits import RateLimit, RateLimiter, get_rate_limiter

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Connect fails fast (nothing was sent); a read allows a broker's OMS its usual latency.
DEFAULT_TIMEOUT = httpx.Timeout(connect=3.0, read=7.0, write=5.0, pool=2.0)
MAX_MESSAGE = 500
PARSE_ERRORS = (KeyError, TypeError, ValueError, ArithmeticError, AttributeError, IndexError)

# --- refusals by their words ------------------------------------------------------------------------
_MARGIN = re.compile(r"insufficient (?:funds|margin|balance)|margin exceeds|rms:\s*margin|shortfall", re.I)
_MARKET_CLOSED = re.compile(
    r"\bmarkets? (?:is |are )?(?:currently |now )?closed\b|outside (?:the )?(?:market|trading) hours", re.I
)
_SEGMENT = re.compile(
    r"segment\b.{0,40}\bnot (?:enabled|activated|active)\b|not (?:enabled|activated|active) for\b.{0,40}\bsegment"
    r"|segment (?:is )?(?:inactive|disabled)",
    re.I,
)
_ORDER_NOT_FOUND = re.compile(
    r"order\b.{0,20}\b(?:not found|does ?n[o']t exist|doesn't exist)"
    r"|(?:couldn't|could not|unable to) find.{0,20}\border|invalid order[ _]?(?:id|no|number)|no such order",
    re.I,
)


def message_of(value: Any, fallback: str) -> str:
    """A broker's message as we keep it: stripped, at most MAX_MESSAGE characters, else ``fallback``."""
    if isinstance(value, str) and value.strip():
        return value.strip().replace("\x00", "")[:MAX_MESSAGE]
    return fallback


def refusal(message: str, *, extra: dict[str, Any] | None = None, order_specific: bool = False) -> BrokerError:
    """The most precise kind of ``BrokerRejected`` that the broker's ``message`` supports.
    ``order_specific``: the call named one order (modify, cancel), so "no such order" is
    ``BrokerOrderNotFound``."""
    extra = extra or {}
    if _MARGIN.search(message):
        return BrokerInsufficientMargin(message, extra=extra)
    if _MARKET_CLOSED.search(message):
        return BrokerMarketClosed(message, extra=extra)
    if _SEGMENT.search(message):
        return BrokerSegmentNotEnabled(message, extra=extra)
    if order_specific and _ORDER_NOT_FOUND.search(message):
        return BrokerOrderNotFound(message, extra=extra)
    return BrokerRejected(message, extra=extra)


# Errors raised before the request's first byte is written: nothing reached the broker.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol, httpx.ProxyError)


def transport_error(exc: httpx.HTTPError, *, broker: str) -> BrokerError:
    """The typed error for an httpx failure: not sent before the request left, else maybe sent."""
    name = type(exc).__name__
    if isinstance(exc, _NOT_SENT):
        return BrokerUnreachable(
            f"Could not connect to {broker} ({name}); the request was not sent", extra={"error": name}
        )
    return BrokerUnavailable(
        f"No answer from {broker} ({name}) after the request was sent; the outcome is unknown", extra={"error": name}
    )


def malformed(broker: str, what: str) -> BrokerUnavailable:
    return BrokerUnavailable(
        f"{broker}'s answer to {what} was not in the documented shape; the outcome is unknown",
        extra={"malformed": what},
    )


def decode_json(body: bytes) -> Any:
    """JSON with every non-integer number as a Decimal; ``ValueError`` if it is not JSON (or holds
    NaN or Infinity, which no broker sends)."""
    return json.loads(body, parse_float=Decimal, parse_constant=_reject_constant)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number a broker sends")


def json_answer(status: int, content_type: str, body: bytes, *, broker: str) -> Any:
    """The common first step of a family's ``answer``: 429 -> rate-limited; the body as JSON, or
    ``BrokerUnavailable`` (maybe sent) when it is not JSON. The family then reads its envelope."""
    payload: Any = None
    try:
        payload = decode_json(body) if body else None
    except (ValueError, RecursionError):
        payload = None
    if status == 429:
        text = payload.get("message") or payload.get("emsg") if isinstance(payload, dict) else None
        raise BrokerRateLimited(message_of(text, f"{broker}: too many requests"), extra={"http_status": status})
    if payload is None:
        raise BrokerUnavailable(
            f"{broker} answered HTTP {status} with a body that is not JSON; the outcome is unknown",
            extra={"http_status": status},
        )
    return payload


def configured_timeout() -> httpx.Timeout:
    """``DEFAULT_TIMEOUT``, with the read timeout of ``settings.BROKER_HTTP_READ_TIMEOUT`` (seconds) where set."""
    read = getattr(settings, "BROKER_HTTP_READ_TIMEOUT", None)
    return DEFAULT_TIMEOUT if read is None else httpx.Timeout(connect=3.0, read=float(read), write=5.0, pool=2.0)


# --- the connection pools --------------------------------------------------------------------------
_pools: dict[str, httpx.Client] = {}
_pools_lock = threading.Lock()


def pooled_http(root: str) -> httpx.Client:
    """The process's ``httpx.Client`` for an API root (thread-safe; connections kept alive)."""
    with _pools_lock:
        client = _pools.get(root)
        if client is None or client.is_closed:
            client = _pools[root] = httpx.Client(
                timeout=DEFAULT_TIMEOUT,
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=16, keepalive_expiry=30.0),
                follow_redirects=False,
            )
        return client


def close_pools() -> None:
    """Close every pooled connection (tests, a stopping process)."""
    with _pools_lock:
        for client in _pools.values():
            client.close()
        _pools.clear()


# Query parameters and form fields that carry secrets, redacted from httpx's request log lines.
SECRET_QUERY = re.compile(
    r"((?:access_token|request_token|refresh_token|checksum|api_secret|secret|jKey|susertoken|code|token|"
    r"appIdHash|password|pwd|totp|pin)=)[^&\s\"'>]+",
    re.I,
)


class RedactSecrets(logging.Filter):
    """Redacts token-bearing query parameters from httpx's request log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = SECRET_QUERY.sub(r"\1[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


_httpx_logger = logging.getLogger("httpx")
if not any(isinstance(f, RedactSecrets) for f in _httpx_logger.filters):
    _httpx_logger.addFilter(RedactSecrets())


# --- the client ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Endpoint:
    """One of a family's calls: ``method`` and ``path`` (a ``str.format`` template, e.g.
    ``/orders/{order_id}``) under the client's root, and the rate limits it counts against."""

    method: str
    path: str
    limits: tuple[RateLimit, ...] = ()
    write: bool = False  # places, changes or cancels something at the broker: never retried

    def url_path(self, args: Mapping[str, str]) -> str:
        return self.path.format(**{name: _path_part(value) for name, value in args.items()})


_PATH_PART = re.compile(r"[A-Za-z0-9_.:|-]{1,128}")


def _path_part(value: str) -> str:
    value = str(value)
    if not _PATH_PART.fullmatch(value):
        raise ValueError("an id in a broker URL must be 1 to 128 letters, digits or . _ : | -")
    return value


Answer = Callable[[int, str, bytes], Any]


class WireClient:
    """One account's (or one login's) calls to one broker API root.

    ``answer(status, content_type, body)`` is the family's envelope reader: it returns the data or
    raises a typed ``BrokerError`` (``json_answer`` does the common first step). ``headers`` is
    called for every request (a session token may be set after sign-in). ``limit_key`` names what
    the broker counts its limits against (the account)."""

    def __init__(
        self,
        *,
        broker: str,
        root: str,
        answer: Answer,
        limit_key: str,
        headers: Callable[[], Mapping[str, str]] | None = None,
        limiter: RateLimiter | None = None,
        http: httpx.Client | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> None:
        self.broker, self.root, self.limit_key = broker, root.rstrip("/"), limit_key
        self._answer, self._headers = answer, headers or dict
        self._limiter, self._http = limiter, http
        self.timeout = timeout or configured_timeout()

    def __repr__(self) -> str:  # never the headers: they carry the session
        return f"WireClient({self.broker!r}, {self.root!r})"

    @property
    def http(self) -> httpx.Client:
        return self._http or pooled_http(self.root)

    @property
    def limiter(self) -> RateLimiter:
        return self._limiter or get_rate_limiter()

    def call(
        self,
        endpoint: Endpoint,
        *,
        path: Mapping[str, str] | None = None,
        params: Any = None,  # what httpx takes: a mapping, or a list of (name, value) pairs
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send one request and return what the family's ``answer`` makes of the response; raises
        the typed errors of the module docstring."""
        url = self.root + endpoint.url_path(path or {})
        attempts = 1 if endpoint.write else 2
        for attempt in range(1, attempts + 1):
            if endpoint.limits:
                self.limiter.acquire(self.limit_key, endpoint.limits)
            started = time.monotonic()
            try:
                response = self.http.request(
                    endpoint.method,
                    url,
                    params=params,
                    json=json_body,
                    data=dict(form) if form is not None else None,
                    content=content,
                    headers={**self._headers(), **(headers or {})},
                    timeout=self.timeout,
                )
            except httpx.HTTPError as exc:
                retry = attempt < attempts and isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                logger.warning(
                    "%s %s %s: %s after %.0f ms%s",
                    self.broker,
                    endpoint.method,
                    endpoint.path,
                    type(exc).__name__,
                    (time.monotonic() - started) * 1000,
                    ", retrying the read once" if retry else "",
                )
                if retry:
                    continue
                raise transport_error(exc, broker=self.broker) from exc
            logger.debug(
                "%s %s %s: %s in %.0f ms",
                self.broker,
                endpoint.method,
                endpoint.path,
                response.status_code,
                (time.monotonic() - started) * 1000,
            )
            return self._answer(response.status_code, response.headers.get("content-type", ""), response.content)
        raise AssertionError("unreachable")  # pragma: no cover

    def parse(self, what: str, parse: Callable[[Any], T], data: Any) -> T:
        """``parse(data)``, with any shape error turned into ``BrokerUnavailable`` (maybe sent)."""
        try:
            return parse(data)
        except PARSE_ERRORS as exc:
            raise malformed(self.broker, what) from exc
