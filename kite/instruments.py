"""Kite Connect's symbol master: the daily instruments dump read into our ``marketdata.Instrument``
master (through the shared loader, ``marketdata.services.instrument_upsert_many``) and the Kite
mapping (``brokers.BrokerInstrument``, broker ``kite``: instrument_token, tradingsymbol, exchange).

The dump is a CSV of ``instrument_token, exchange_token, tradingsymbol, name, last_price, expiry,
strike, tick_size, lot_size, instrument_type, segment, exchange``, about 100,000 rows, generated once a
day before the market opens; ``marketdata.importers.from_kite`` maps its vocabulary to ours. It is
read one row at a time.

An import is whole or nothing: one transaction, refused (``InstrumentImportFailed``, the previous
master and mapping untouched) when the file is cut short (a row with missing or extra cells, bad
quoting, no line break at the end), lacks a column, or loads fewer instruments than
``min_percent`` of the current mapping or ``min_rows``. A single unreadable row is reported by line
and keeps yesterday's contract. ``refresh_instruments`` counts each failure in
``terminal_kite_instruments_import_failures_total`` (alert ``TerminalKiteInstrumentsImportFailed``).
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import math
import re
import shutil
import tempfile
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from brokers.adapters.base import BrokerError
from brokers.instrument_map import broker_instrument_count, instrument_map_invalidate
from brokers.models import BrokerAccount, BrokerSession
from brokers.services.credentials import broker_credentials_get
from brokers.services.instruments import (
    BrokerListing,
    broker_instrument_upsert_many,
    broker_instruments_keep,
    broker_instruments_retire_unlisted,
)
from brokers.services.sessions import session_secrets
from core.errors import ApplicationError
from kite import metrics
from kite.client import KiteClient
from kite.records import INSTRUMENT_COLUMNS, KiteInstrument
from marketdata.errors import InvalidInstrumentRow
from marketdata.importers import cell_repr, csv_records, from_kite
from marketdata.models import Exchange
from marketdata.services import instrument_upsert_many

logger = logging.getLogger(__name__)

BROKER = "kite"
_IST = ZoneInfo("Asia/Kolkata")
_OURS = frozenset(Exchange.values)
_EXCHANGE_CODE = re.compile(r"[A-Z]{2,8}")  # an exchange Kite lists and we do not (BCD, ...) is skipped
_MAX_TOKEN_DIGITS = 20

TextSource = Callable[[], Iterable[str]]


class InstrumentImportFailed(ApplicationError):
    """The dump was not imported; the previous master and mapping stand. ``reason`` is the metric's label."""

    code = "kite_instruments_import_failed"
    status = 502

    def __init__(self, message: str, *, reason: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message, extra=extra)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class KiteRow:
    """One data row of the dump: ``row`` (our layout) and ``listing`` (the mapping) when it can be
    loaded, ``error`` when it cannot, ``skipped`` (the exchange) when it is of an exchange we do not list."""

    line: int
    row: dict[str, str] | None = None
    listing: BrokerListing | None = None
    error: InvalidInstrumentRow | None = None
    token: str = ""
    skipped: str = ""


@dataclass
class KiteImportReport:
    rows: int = 0  # data rows read
    created: int = 0
    updated: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line, message), rows not loaded
    skipped: Counter[str] = field(default_factory=Counter)  # exchange -> rows of exchanges we do not list
    mapped: int = 0
    previous: int = 0  # instruments mapped before the import
    retired: int = 0  # no longer listed: marked inactive
    expired: int = 0  # listed with an expiry before today: marked inactive

    @property
    def loaded(self) -> int:
        return self.created + self.updated


def parse_instruments(lines: Iterable[str]) -> Iterator[KiteRow]:
    """Yield a ``KiteRow`` per data row of the dump in ``lines`` (a text stream, line breaks kept).

    Raises InvalidInstrumentRow, after the rows before it, when the file is not whole: a column
    missing, a row with too few or too many cells, bad quoting, a last line without its break.
    """
    tokens: set[int] = set()
    for line, record in csv_records(lines, "kite", strict=True):
        exchange = (record.get("exchange") or "").strip()
        if exchange not in _OURS and _EXCHANGE_CODE.fullmatch(exchange):
            yield KiteRow(line, skipped=exchange)
            continue
        token = (record.get("instrument_token") or "").strip()
        try:
            if not (token.isascii() and token.isdigit() and len(token) <= _MAX_TOKEN_DIGITS and int(token) > 0):
                raise InvalidInstrumentRow(
                    f"instrument_token {cell_repr(token)} is not a positive whole number",
                    extra={"field": "instrument_token"},
                )
            token = str(int(token))  # one spelling per token: no leading zeros
            if int(token) in tokens:
                raise InvalidInstrumentRow(
                    f"instrument_token {token} appears earlier in the file", extra={"field": "instrument_token"}
                )
            tokens.add(int(token))
            row = from_kite(record)
        except InvalidInstrumentRow as exc:
            yield KiteRow(line, error=exc, token=token if token.isdigit() else "")
            continue
        listing = BrokerListing(
            exchange=row["exchange"],
            tradingsymbol=row["tradingsymbol"],
            token=token,
            broker_tradingsymbol=row["tradingsymbol"],
            broker_exchange=exchange,
        )
        yield KiteRow(line, row=row, listing=listing, token=token)


def import_instruments(
    lines: Iterable[str],
    *,
    min_percent: int,
    min_rows: int,
    today: date | None = None,
    on_row: Callable[[], None] | None = None,
) -> KiteImportReport:
    """Import the dump in ``lines`` into the master and the Kite mapping in one transaction.

    Instruments are updated in place (keyed by exchange and trading symbol, so their ids stay);
    those the mapping held that the file no longer lists, and those whose expiry is before
    ``today`` (IST), are marked inactive, never deleted. Raises InstrumentImportFailed (nothing
    written) when the file is not whole or loads fewer than ``min_percent`` % of the instruments
    the mapping held, or fewer than ``min_rows``.
    """
    today = today or datetime.now(_IST).date()
    listed_at = timezone.now()
    report = KiteImportReport()
    pending: dict[int, BrokerListing] = {}  # line -> listing, until its batch is written
    kept: list[str] = []  # tokens of rows that could not be read: their contracts stay as they were

    def rows() -> Iterator[tuple[int, dict[str, str] | InvalidInstrumentRow]]:
        for item in parse_instruments(lines):
            report.rows += 1
            if on_row is not None:
                on_row()
            if item.skipped:
                report.skipped[item.skipped] += 1
            elif item.error is not None:
                kept.append(item.token)
                yield item.line, item.error
            else:
                pending[item.line] = item.listing
                yield item.line, item.row

    def map_batch(written: list[tuple[int, dict[str, Any]]]) -> None:
        listings = [pending.pop(line) for line, _ in written]
        report.mapped += broker_instrument_upsert_many(broker=BROKER, listings=listings, listed_at=listed_at)

    try:
        with transaction.atomic():
            report.previous = broker_instrument_count(broker=BROKER)
            upserted = instrument_upsert_many(rows=rows(), on_batch=map_batch)
            report.created, report.updated, report.errors = upserted.created, upserted.updated, upserted.errors
            needed = max(min_rows, math.ceil(report.previous * min_percent / 100))
            if report.loaded < needed:
                raise InstrumentImportFailed(
                    f"implausibly small: {report.loaded:,} instruments loaded where the Kite mapping holds "
                    f"{report.previous:,} (at least {needed:,} needed)",
                    reason="implausible",
                    extra={"loaded": report.loaded, "previous": report.previous, "needed": needed},
                )
            kept.extend(listing.token for listing in pending.values())  # rows the shared loader refused
            broker_instruments_keep(broker=BROKER, tokens=filter(None, kept), listed_at=listed_at)
            report.retired, report.expired = broker_instruments_retire_unlisted(
                broker=BROKER, listed_at=listed_at, today=today
            )
            transaction.on_commit(instrument_map_invalidate)
    except InvalidInstrumentRow as exc:
        raise InstrumentImportFailed(exc.message, reason="malformed", extra=exc.extra) from None
    return report


def refresh_instruments(
    source: TextSource,
    *,
    min_percent: int,
    min_rows: int,
    today: date | None = None,
    on_row: Callable[[], None] | None = None,
) -> KiteImportReport:
    """Fetch the dump with ``source`` (a callable returning it as a text stream: a file, a download,
    the Kite client's) and import it. Every failure is counted by reason and raised as
    InstrumentImportFailed; the previous master and mapping stand."""
    try:
        try:
            stream = source()
        except InstrumentImportFailed:
            raise
        except Exception as exc:
            raise InstrumentImportFailed(f"the dump could not be fetched: {exc}", reason="download") from exc
        try:
            report = import_instruments(stream, min_percent=min_percent, min_rows=min_rows, today=today, on_row=on_row)
        except InstrumentImportFailed:
            raise
        except (OSError, UnicodeDecodeError) as exc:  # the stream broke while it was read
            raise InstrumentImportFailed(f"the dump could not be read: {exc}", reason="download") from exc
        except Exception as exc:
            raise InstrumentImportFailed(f"the import failed: {type(exc).__name__}: {exc}", reason="error") from exc
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
    except InstrumentImportFailed as exc:
        metrics.instrument_import_failures.labels(exc.reason).inc()
        logger.error("kite instruments not imported (%s): %s", exc.reason, exc.message)
        raise
    logger.info(
        "kite instruments imported: %s created, %s updated, %s rejected, %s retired, %s expired",
        report.created,
        report.updated,
        len(report.errors),
        report.retired,
        report.expired,
    )
    return report


# --- Sources ---------------------------------------------------------------------------------------


def text_stream(binary: Any) -> io.TextIOWrapper:
    """The dump as text from a binary stream (a file, stdin's buffer, a download), gunzipped when it
    is gzip: Kite serves the dump gzipped."""
    if hasattr(binary, "peek"):
        head = binary.peek(2)[:2]
    else:  # seekable: a file or a spooled download
        head = binary.read(2)
        binary.seek(0)
    if head == b"\x1f\x8b":
        binary = gzip.GzipFile(fileobj=binary, mode="rb")
    return io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")


class NoSignedInAccount(InstrumentImportFailed):
    """No Kite account has a live session to download the dump with (before the morning's sign-in)."""


class DumpDownloadFailed(OSError):
    """The Kite client's download of the dump failed part-way (refused, cut short, malformed)."""


def signed_in_client() -> KiteClient:
    """A Kite client with the credentials and live session of a signed-in Kite account: the feed
    account (``KITE_FEED_ACCOUNT_ID``) first, else the first active Kite account with a live session.
    Raises NoSignedInAccount (an InstrumentImportFailed, reason ``download``) when no Kite account is
    signed in."""
    now = timezone.now()
    accounts = BrokerAccount.objects.filter(
        broker=BROKER, is_active=True, session__state=BrokerSession.State.LIVE, session__expires_at__gt=now
    ).order_by("pk")
    feed_account_id = settings.KITE_FEED_ACCOUNT_ID
    for account in sorted(accounts, key=lambda a: (a.pk != feed_account_id, a.pk)):
        access_token = (session_secrets(account, now) or {}).get("access_token", "")
        api_key = broker_credentials_get(account=account).get("api_key", "")
        if access_token and api_key:
            return KiteClient(api_key, access_token, root=settings.KITE_API_ROOT, limit_key=f"account:{account.pk}")
    raise NoSignedInAccount(
        "no Kite account has a live session to download the instruments dump with: sign one in (the daily "
        "login), then run the task or manage.py load_kite_instruments again",
        reason="download",
    )


def client_source(client: KiteClient) -> TextSource:
    """A source reading the dump through the Kite client (``KiteClient.instruments()``: the account's
    ``Authorization`` and ``X-Kite-Version`` headers, its rate limits, Kite's errors), as the dump's
    CSV lines for the import. A download refused or cut short raises DumpDownloadFailed while it is
    read, which fails the import (reason ``download``) with nothing written."""

    def fetch() -> Iterator[str]:
        return _dump_lines(client.instruments())

    return fetch


def _dump_lines(instruments: Iterator[KiteInstrument]) -> Iterator[str]:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    yield ",".join(INSTRUMENT_COLUMNS) + "\n"
    try:
        for item in instruments:
            writer.writerow(
                (
                    item.instrument_token,
                    item.exchange_token,
                    item.tradingsymbol,
                    item.name,
                    _plain(item.last_price),
                    item.expiry.isoformat() if item.expiry else "",
                    _plain(item.strike),
                    _plain(item.tick_size),
                    item.lot_size,
                    item.instrument_type,
                    item.segment,
                    item.exchange,
                )
            )
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    except BrokerError as exc:
        raise DumpDownloadFailed(f"Kite: {exc.message}") from exc
    finally:
        close = getattr(instruments, "close", None)
        if close is not None:
            close()


def _plain(value: Decimal) -> str:
    return format(value, "f")


def url_source(url: str, *, timeout: float = 60.0, headers: dict[str, str] | None = None) -> TextSource:
    """A source downloading ``url`` whole to a temporary file first (so a broken download fails before
    the import starts), then read as text. A stop-gap until the Kite client hands its own stream in."""
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"not an http(s) URL: {url!r}")

    def fetch() -> io.TextIOBase:
        request = urllib.request.Request(url, headers={"X-Kite-Version": "3", **(headers or {})})  # noqa: S310
        spool = tempfile.SpooledTemporaryFile(max_size=1 << 20)  # noqa: SIM115 - handed to the reader, closed by it
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310  # nosec B310 - http(s) only, checked above
                shutil.copyfileobj(response, spool)
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return text_stream(spool)

    return fetch
