"""The Kite Connect v3 HTTP client: typed calls over one pooled ``httpx.Client`` per API root.

Every request sends ``X-Kite-Version: 3`` and, once there is an access token,
``Authorization: token <api_key>:<access_token>``; POST and PUT bodies are form-encoded, GET and
DELETE parameters go in the query string, lists as a repeated key (``i=NSE:INFY&i=BSE:SENSEX``)
(https://kite.trade/docs/connect/v3/, pykiteconnect ``connect.py``). Each call returns frozen
dataclasses from ``kite.records`` (Decimal prices, aware UTC datetimes), never Kite's raw JSON.

Failures are the broker contract's typed errors (``kite.errors`` says which is which): nothing that
places, modifies or cancels is ever retried here, since a lost answer leaves the order's fate unknown
(``BrokerUnavailable``) and only reconciliation by tag may settle it. A read is retried once when the
connection could not be made. Requests are counted against Kite's rate limits first
(``kite.rate_limits``, ``brokers.rate_limits``); over a limit a call waits up to a second or raises
``BrokerRateLimited`` without sending.

The client logs method, path, status and duration, never a parameter, header or token; httpx's own
request log line has the token-bearing query parameters (the logout call's) redacted.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from brokers.families.wire import pooled_http
from brokers.rate_limits import RateLimiter, get_rate_limiter
from kite import records
from kite.errors import malformed, transport_error, unwrap
from kite.rate_limits import LIMITS, EndpointClass
from kite.records import (
    INSTRUMENT_COLUMNS,
    MARGIN_SEGMENTS,
    VARIETIES,
    GttRequest,
    KiteCandle,
    KiteGtt,
    KiteHolding,
    KiteInstrument,
    KiteLTP,
    KiteMargins,
    KiteOHLCQuote,
    KiteOrder,
    KiteOrderParams,
    KitePositions,
    KiteProfile,
    KiteQuote,
    KiteSegmentMargins,
    KiteSession,
    KiteTrade,
    check_market_protection,
    wire,
)

logger = logging.getLogger(__name__)

DEFAULT_ROOT = "https://api.kite.trade"
LOGIN_URL = "https://kite.zerodha.com/connect/login"
KITE_VERSION = "3"
USER_AGENT = "algo-terminal-kite/1"
# Connect fails fast (nothing was sent); read allows Kite's OMS its usual latency (pykiteconnect: 7 s).
DEFAULT_TIMEOUT = httpx.Timeout(connect=3.0, read=7.0, write=5.0, pool=2.0)
MAX_QUOTE_INSTRUMENTS = 500  # /quote
MAX_LTP_INSTRUMENTS = 1000  # /quote/ltp and /quote/ohlc
# Historical candles: each interval Kite serves and the most days one request may span (Zerodha's
# staff answers on the Kite forum, discussions 3105 and comment 53245; pykiteconnect's integration
# tests still probe older, smaller caps, which these contain). Kite refuses a longer span.
HISTORICAL_DAYS: dict[str, int] = {
    "minute": 60,
    "3minute": 100,
    "5minute": 100,
    "10minute": 100,
    "15minute": 200,
    "30minute": 200,
    "60minute": 400,
    "day": 2000,
}
_KITE_TIME = "%Y-%m-%d %H:%M:%S"  # the from/to parameters, in IST

_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PARSE_ERRORS = (KeyError, TypeError, ValueError, ArithmeticError, AttributeError, IndexError)

T = TypeVar("T")


# The connection pools and the redaction of token-bearing query parameters from httpx's log lines are
# every broker family's (brokers.families.wire).


# --- the client ------------------------------------------------------------------------------------


def _check_id(value: str | int, what: str) -> str:
    value = str(value)
    if not _ID.fullmatch(value):
        raise ValueError(f"{what} must be 1 to 64 letters, digits, '-' or '_'")
    return value


def _check_variety(variety: str) -> str:
    if variety not in VARIETIES:
        raise ValueError(f"variety must be one of {', '.join(VARIETIES)}")
    return variety


class KiteClient:
    """Kite Connect v3 for one API key (and, once logged in, one access token).

    ``limit_key`` names the account whose rate limits the calls count against (default: the API key,
    hashed); ``limiter`` defaults to the process's (Redis-backed when ``REDIS_URL`` is set);
    ``http`` defaults to the pooled client for ``root``.
    """

    def __init__(
        self,
        api_key: str,
        access_token: str | None = None,
        *,
        root: str = DEFAULT_ROOT,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        limiter: RateLimiter | None = None,
        limit_key: str | None = None,
        http: httpx.Client | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required")
        self.api_key = api_key
        self._access_token = access_token
        self.root = root.rstrip("/")
        self.timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._limiter = limiter
        self.limit_key = limit_key or "api_key:" + hashlib.sha256(api_key.encode()).hexdigest()[:16]
        self._http = http

    def __repr__(self) -> str:
        return f"KiteClient(root={self.root!r}, logged_in={self._access_token is not None})"

    def with_access_token(self, access_token: str) -> KiteClient:
        """The same client (root, timeouts, limits, pool) for a logged-in session."""
        return KiteClient(
            self.api_key,
            access_token,
            root=self.root,
            timeout=self.timeout,
            limiter=self._limiter,
            limit_key=self.limit_key,
            http=self._http,
        )

    # --- plumbing ---------------------------------------------------------------------------------

    @property
    def http(self) -> httpx.Client:
        return self._http or pooled_http(self.root)

    @property
    def limiter(self) -> RateLimiter:
        return self._limiter or get_rate_limiter()

    def _headers(self) -> dict[str, str]:
        headers = {"X-Kite-Version": KITE_VERSION, "User-Agent": USER_AGENT}
        if self._access_token:
            headers["Authorization"] = f"token {self.api_key}:{self._access_token}"
        return headers

    def _call(
        self,
        method: str,
        path: str,
        endpoint: EndpointClass,
        *,
        params: Sequence[tuple[str, str]] | None = None,
        form: Sequence[tuple[str, str]] | None = None,
        json_body: Any = None,
        write: bool = False,
        order_specific: bool = False,
    ) -> Any:
        url = self.root + path
        attempts = 1 if write else 2
        for attempt in range(1, attempts + 1):
            self.limiter.acquire(self.limit_key, LIMITS[endpoint])
            started = time.monotonic()
            try:
                response = self.http.request(
                    method,
                    url,
                    params=list(params) if params else None,
                    data=dict(form) if form else None,
                    json=json_body,
                    headers=self._headers(),
                    timeout=self.timeout,
                )
            except httpx.HTTPError as exc:
                retry = not write and attempt < attempts and isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                logger.warning(
                    "kite %s %s: %s after %.0f ms%s",
                    method,
                    path,
                    type(exc).__name__,
                    (time.monotonic() - started) * 1000,
                    ", retrying the read once" if retry else "",
                )
                if retry:
                    continue
                raise transport_error(exc) from exc
            logger.debug(
                "kite %s %s: %s in %.0f ms", method, path, response.status_code, (time.monotonic() - started) * 1000
            )
            return unwrap(
                response.status_code,
                response.headers.get("content-type", ""),
                response.content,
                order_specific=order_specific,
            )
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def _parse(what: str, parse: Callable[[Any], T], data: Any) -> T:
        try:
            return parse(data)
        except _PARSE_ERRORS as exc:
            raise malformed(what) from exc

    # --- session ----------------------------------------------------------------------------------

    def login_url(self, *, base: str = LOGIN_URL, redirect_params: str | None = None) -> str:
        """Kite's login page for this API key; ``redirect_params`` (a query string) comes back to
        the app's registered redirect URL with the request token."""
        url = f"{base}?api_key={quote(self.api_key)}&v={KITE_VERSION}"
        if redirect_params:
            url += f"&redirect_params={quote(redirect_params, safe='')}"
        return url

    def generate_session(self, request_token: str, api_secret: str) -> KiteSession:
        """Exchange the login's ``request_token`` for an access token (``POST /session/token``,
        checksum = SHA-256 of api_key + request_token + api_secret)."""
        if not request_token or not api_secret:
            raise ValueError("request_token and api_secret are required")
        checksum = hashlib.sha256((self.api_key + request_token + api_secret).encode()).hexdigest()
        data = self._call(
            "POST",
            "/session/token",
            EndpointClass.OTHER,
            form=[("api_key", self.api_key), ("request_token", request_token), ("checksum", checksum)],
            write=True,
        )
        return self._parse("the session token exchange", records.session_from, data)

    def invalidate_session(self) -> None:
        """Log the access token out (``DELETE /session/token?api_key=&access_token=``)."""
        if not self._access_token:
            raise ValueError("no access token to invalidate")
        self._call(
            "DELETE",
            "/session/token",
            EndpointClass.OTHER,
            params=[("api_key", self.api_key), ("access_token", self._access_token)],
            write=True,
        )

    def profile(self) -> KiteProfile:
        return self._parse("the profile", records.profile_from, self._call("GET", "/user/profile", EndpointClass.OTHER))

    # --- orders -----------------------------------------------------------------------------------

    def place_order(self, variety: str, params: KiteOrderParams) -> str:
        """Place an order; return Kite's order id. Never retried: ``BrokerUnavailable`` means the
        order may exist (find it by its tag)."""
        form = params.form(_check_variety(variety))
        data = self._call("POST", f"/orders/{variety}", EndpointClass.ORDER_PLACE, form=form, write=True)
        return self._parse("an order placement", _order_id, data)

    def modify_order(
        self,
        variety: str,
        order_id: str,
        *,
        quantity: int | None = None,
        price: records.Decimal | None = None,
        order_type: str | None = None,
        trigger_price: records.Decimal | None = None,
        validity: str | None = None,
        disclosed_quantity: int | None = None,
        market_protection: int | None = None,
        parent_order_id: str | None = None,
    ) -> str:
        """Modify an open order (``PUT /orders/:variety/:order_id``); return its order id."""
        _check_variety(variety)
        order_id = _check_id(order_id, "order_id")
        check_market_protection(market_protection)
        form: list[tuple[str, str]] = []
        for name, value in (
            ("parent_order_id", parent_order_id),
            ("quantity", quantity),
            ("price", price),
            ("order_type", order_type),
            ("trigger_price", trigger_price),
            ("validity", validity),
            ("disclosed_quantity", disclosed_quantity),
            ("market_protection", market_protection),
        ):
            if value is not None:
                form.append((name, value if isinstance(value, str) else wire(value)))
        if not form:
            raise ValueError("nothing to modify")
        data = self._call(
            "PUT",
            f"/orders/{variety}/{order_id}",
            EndpointClass.ORDER_WRITE,
            form=form,
            write=True,
            order_specific=True,
        )
        return self._parse("an order modification", _order_id, data)

    def cancel_order(self, variety: str, order_id: str, *, parent_order_id: str | None = None) -> str:
        """Cancel an open order, or exit a cover order (``DELETE /orders/:variety/:order_id``)."""
        _check_variety(variety)
        order_id = _check_id(order_id, "order_id")
        params = [("parent_order_id", _check_id(parent_order_id, "parent_order_id"))] if parent_order_id else None
        data = self._call(
            "DELETE",
            f"/orders/{variety}/{order_id}",
            EndpointClass.ORDER_WRITE,
            params=params,
            write=True,
            order_specific=True,
        )
        return self._parse("an order cancellation", _order_id, data)

    def orders(self) -> tuple[KiteOrder, ...]:
        """The day's order book."""
        return self._parse(
            "the order book", _many(records.order_from), self._call("GET", "/orders", EndpointClass.OTHER)
        )

    def order_history(self, order_id: str) -> tuple[KiteOrder, ...]:
        """Every state an order went through, oldest first (``GET /orders/:order_id``)."""
        path = f"/orders/{_check_id(order_id, 'order_id')}"
        data = self._call("GET", path, EndpointClass.OTHER, order_specific=True)
        return self._parse("an order's history", _many(records.order_from), data)

    def trades(self) -> tuple[KiteTrade, ...]:
        return self._parse(
            "the trade book", _many(records.trade_from), self._call("GET", "/trades", EndpointClass.OTHER)
        )

    def order_trades(self, order_id: str) -> tuple[KiteTrade, ...]:
        path = f"/orders/{_check_id(order_id, 'order_id')}/trades"
        data = self._call("GET", path, EndpointClass.OTHER, order_specific=True)
        return self._parse("an order's trades", _many(records.trade_from), data)

    # --- portfolio and funds ----------------------------------------------------------------------

    def positions(self) -> KitePositions:
        data = self._call("GET", "/portfolio/positions", EndpointClass.OTHER)
        return self._parse("the positions", records.positions_from, data)

    def holdings(self) -> tuple[KiteHolding, ...]:
        data = self._call("GET", "/portfolio/holdings", EndpointClass.OTHER)
        return self._parse("the holdings", _many(records.holding_from), data)

    def margins(self) -> KiteMargins:
        """Funds and margins of both segments (``GET /user/margins``)."""
        return self._parse("the margins", records.margins_from, self._call("GET", "/user/margins", EndpointClass.OTHER))

    def order_margins(self, orders: Sequence[dict[str, Any]]) -> Decimal:
        """The margin Kite would block for ``orders`` placed now: for one, ``POST /margins/orders`` (its
        ``total``); for several, ``POST /margins/basket?consider_positions=true`` (the basket's
        ``final.total``, hedges and the account's positions counted). Each order is Kite's JSON order:
        exchange, tradingsymbol, transaction_type, variety, product, order_type, quantity, price,
        trigger_price. Raises as ``kite.errors`` maps Kite's answer; a malformed answer is
        BrokerUnavailable."""
        if len(orders) == 1:
            data = self._call("POST", "/margins/orders", EndpointClass.OTHER, json_body=list(orders))
            return self._parse("the order margins", lambda d: _decimal_total(d[0]), data)
        data = self._call(
            "POST",
            "/margins/basket",
            EndpointClass.OTHER,
            params=[("consider_positions", "true")],
            json_body=list(orders),
        )
        return self._parse("the basket margins", lambda d: _decimal_total(d["final"]), data)

    def segment_margins(self, segment: str) -> KiteSegmentMargins:
        """Funds and margins of ``equity`` or ``commodity`` (``GET /user/margins/:segment``)."""
        if segment not in MARGIN_SEGMENTS:
            raise ValueError(f"segment must be one of {', '.join(MARGIN_SEGMENTS)}")
        data = self._call("GET", f"/user/margins/{segment}", EndpointClass.OTHER)
        return self._parse("a segment's margins", records.segment_margins_from, data)

    # --- market quotes ----------------------------------------------------------------------------

    def _quotes(
        self, path: str, instruments: Sequence[str], limit: int, parse: Callable[[str, Any], T]
    ) -> dict[str, T]:
        if isinstance(instruments, str):
            instruments = [instruments]
        if not instruments:
            return {}
        if len(instruments) > limit:
            raise ValueError(f"at most {limit} instruments per call")
        for instrument in instruments:
            if ":" not in instrument:
                raise ValueError("instruments are EXCHANGE:TRADINGSYMBOL")
        data = self._call("GET", path, EndpointClass.QUOTE, params=[("i", i) for i in instruments])

        def parse_all(data: Any) -> dict[str, T]:
            return {str(key): parse(str(key), value) for key, value in records.obj(data).items()}

        return self._parse(f"the quotes ({path})", parse_all, data)

    def quote(self, instruments: Sequence[str]) -> dict[str, KiteQuote]:
        """Full quotes (depth, OHLC, OI) keyed ``EXCHANGE:TRADINGSYMBOL``; unknown instruments are absent."""
        return self._quotes("/quote", instruments, MAX_QUOTE_INSTRUMENTS, records.quote_from)

    def ohlc(self, instruments: Sequence[str]) -> dict[str, KiteOHLCQuote]:
        return self._quotes("/quote/ohlc", instruments, MAX_LTP_INSTRUMENTS, records.ohlc_quote_from)

    def ltp(self, instruments: Sequence[str]) -> dict[str, KiteLTP]:
        return self._quotes("/quote/ltp", instruments, MAX_LTP_INSTRUMENTS, records.ltp_from)

    # --- historical candles -----------------------------------------------------------------------

    def historical_candles(
        self,
        instrument_token: int,
        interval: str,
        start: datetime,
        end: datetime,
        *,
        oi: bool = True,
        continuous: bool = False,
    ) -> tuple[KiteCandle, ...]:
        """Bars of ``interval`` from ``start`` to ``end`` (aware datetimes, both inclusive as Kite reads
        them), oldest first (``GET /instruments/historical/:token/:interval?from=&to=&continuous=&oi=``,
        from and to as ``YYYY-MM-DD HH:MM:SS`` IST). Counted against Kite's historical limit (3/s).
        Raises ValueError for an unknown interval, naive or reversed times, or a span over
        ``HISTORICAL_DAYS`` (nothing sent)."""
        days = HISTORICAL_DAYS.get(interval)
        if days is None:
            raise ValueError(f"interval must be one of {', '.join(HISTORICAL_DAYS)}")
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end must be aware datetimes")
        if end < start:
            raise ValueError("end is before start")
        if end - start > timedelta(days=days):
            raise ValueError(f"Kite serves at most {days} days of {interval} candles a request")
        if isinstance(instrument_token, bool) or not isinstance(instrument_token, int) or instrument_token <= 0:
            raise ValueError("instrument_token must be a positive integer")
        params = [
            ("from", start.astimezone(records.IST).strftime(_KITE_TIME)),
            ("to", end.astimezone(records.IST).strftime(_KITE_TIME)),
            ("continuous", "1" if continuous else "0"),
            ("oi", "1" if oi else "0"),
        ]
        path = f"/instruments/historical/{instrument_token}/{interval}"
        data = self._call("GET", path, EndpointClass.HISTORICAL, params=params)
        return self._parse("the historical candles", records.candles_from, data)

    # --- GTT --------------------------------------------------------------------------------------

    def place_gtt(self, request: GttRequest) -> int:
        """Place a single or two-leg (OCO) GTT; return its trigger id."""
        data = self._call("POST", "/gtt/triggers", EndpointClass.OTHER, form=request.form(), write=True)
        return self._parse("a GTT placement", records.trigger_id_from, data)

    def modify_gtt(self, trigger_id: int, request: GttRequest) -> int:
        path = f"/gtt/triggers/{_check_id(trigger_id, 'trigger_id')}"
        data = self._call("PUT", path, EndpointClass.OTHER, form=request.form(), write=True, order_specific=True)
        return self._parse("a GTT modification", records.trigger_id_from, data)

    def delete_gtt(self, trigger_id: int) -> int:
        path = f"/gtt/triggers/{_check_id(trigger_id, 'trigger_id')}"
        data = self._call("DELETE", path, EndpointClass.OTHER, write=True, order_specific=True)
        return self._parse("a GTT deletion", records.trigger_id_from, data)

    def gtts(self) -> tuple[KiteGtt, ...]:
        """Every GTT in the GTT book."""
        return self._parse(
            "the GTT book", _many(records.gtt_from), self._call("GET", "/gtt/triggers", EndpointClass.OTHER)
        )

    def gtt(self, trigger_id: int) -> KiteGtt:
        path = f"/gtt/triggers/{_check_id(trigger_id, 'trigger_id')}"
        return self._parse("a GTT", records.gtt_from, self._call("GET", path, EndpointClass.OTHER, order_specific=True))

    # --- instruments ------------------------------------------------------------------------------

    def instruments(self, exchange: str | None = None) -> Iterator[KiteInstrument]:
        """The instruments dump (``GET /instruments[/:exchange]``, CSV, gzip on the wire), streamed:
        rows are parsed as they arrive, so the whole dump is never held in memory. Close the iterator
        (or exhaust it) to release the connection."""
        path = "/instruments" + (f"/{_check_id(exchange, 'exchange')}" if exchange else "")
        self.limiter.acquire(self.limit_key, LIMITS[EndpointClass.OTHER])
        try:
            with self.http.stream("GET", self.root + path, headers=self._headers(), timeout=self.timeout) as response:
                content_type = response.headers.get("content-type", "")
                if response.status_code != 200 or "csv" not in content_type.lower():
                    unwrap(response.status_code, content_type, response.read())
                    raise malformed("the instruments dump")
                reader = csv.reader(response.iter_lines())
                header = next(reader, None)
                if header is None or tuple(h.strip().lstrip("\ufeff") for h in header) != INSTRUMENT_COLUMNS:
                    raise malformed("the instruments dump's header")
                for number, row in enumerate(reader, start=2):
                    if not row:
                        continue
                    try:
                        instrument = records.instrument_from(row)
                    except _PARSE_ERRORS as exc:
                        raise malformed(f"the instruments dump (line {number})") from exc
                    yield instrument
        except httpx.HTTPError as exc:
            logger.warning("kite GET %s: %s", path, type(exc).__name__)
            raise transport_error(exc) from exc
        except csv.Error as exc:
            raise malformed("the instruments dump") from exc


def _order_id(data: Any) -> str:
    order_id = records.text(records.obj(data)["order_id"])
    if not order_id:
        raise ValueError("empty order_id")
    return order_id


def _many(parse: Callable[[Any], T]) -> Callable[[Any], tuple[T, ...]]:
    def parse_all(data: Any) -> tuple[T, ...]:
        return tuple(parse(item) for item in records.items(data))

    return parse_all


def _decimal_total(margins: dict[str, Any]) -> Decimal:
    """A margins object's ``total``, a finite non-negative number (Kite sends it as a JSON number)."""
    value = margins["total"]
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise TypeError(f"margin total {value!r}")
    total = Decimal(str(value))
    if not total.is_finite() or total < 0:
        raise ValueError(f"margin total {value!r}")
    return total
