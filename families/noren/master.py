"""NorenOMS's symbol masters: one zip per exchange at ``<master host>/<EXCH>_symbols.txt.zip``, holding
one CSV text file with a header (ShoonyaApi-py ``tests/test_download_masters.py``). The columns read,
by name: ``Exchange``, ``Token``, ``TradingSymbol`` (NSE's file is ``Exchange,Token,LotSize,Symbol,
TradingSymbol,Instrument,TickSize``; the derivatives' add expiry, option type and strike). Noren's
token is the exchange's own, so each row maps by (exchange, token); the family's token is
``<Exchange>|<Token>``."""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator

import httpx

from brokers import catalogue
from brokers.adapters.base import BrokerUnavailable
from brokers.families.master import MasterRow
from brokers.families.wire import DEFAULT_TIMEOUT, pooled_http, transport_error
from families.noren.mapping import EXCHANGES, EXCHANGES_BACK

MAX_DOWNLOAD = 64 * 1024 * 1024  # the largest file (NFO) is some tens of megabytes unzipped
REQUIRED = ("Exchange", "Token", "TradingSymbol")


def master_urls(broker: str) -> dict[str, str]:
    """The master file of each of the broker's exchanges that the family trades."""
    root = catalogue.endpoint(broker, "master").rstrip("/")
    try:
        segments = catalogue.entry(broker).segments or tuple(EXCHANGES)
    except catalogue.UnknownBrokerEntry:
        segments = tuple(EXCHANGES)
    return {ours: f"{root}/{EXCHANGES[ours]}_symbols.txt.zip" for ours in segments if ours in EXCHANGES}


def download_master(broker: str) -> Iterator[MasterRow | tuple[int, str]]:
    """Every exchange's master of ``broker``, downloaded and read (``parse_master``). Raises
    BrokerUnreachable/BrokerUnavailable when a file cannot be downloaded or is not a zipped master."""
    for exchange, url in master_urls(broker).items():
        content = _download(url, broker)
        yield from parse_master(content, expect=exchange, name=url.rsplit("/", 1)[-1])


def _download(url: str, broker: str) -> bytes:
    try:
        with pooled_http(url.rsplit("/", 1)[0]).stream("GET", url, timeout=DEFAULT_TIMEOUT) as response:
            if response.status_code != 200:
                raise BrokerUnavailable(
                    f"{broker}'s symbol master {url.rsplit('/', 1)[-1]} answered HTTP {response.status_code}",
                    extra={"http_status": response.status_code},
                )
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_DOWNLOAD:
                    raise BrokerUnavailable(f"{broker}'s symbol master is larger than {MAX_DOWNLOAD} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.HTTPError as exc:
        raise transport_error(exc, broker=broker) from exc


def parse_master(
    content: bytes, *, expect: str | None = None, name: str = "master"
) -> Iterator[MasterRow | tuple[int, str]]:
    """The rows of one zipped master: a MasterRow for each instrument, ``(line, why)`` for a row that
    cannot be read (or lists another exchange than ``expect``). Raises BrokerUnavailable for a file
    that is not a zip holding one CSV with the documented header."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) != 1 or members[0].file_size > MAX_DOWNLOAD:
            raise BrokerUnavailable(f"{name} does not hold one master file")
        text = archive.read(members[0]).decode("utf-8-sig", errors="replace")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
        raise BrokerUnavailable(f"{name} is not a readable zip file") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [column.strip() for column in next(reader, [])]
    if any(column not in header for column in REQUIRED):
        raise BrokerUnavailable(f"{name} lacks the columns {', '.join(REQUIRED)}")
    index = {column: header.index(column) for column in REQUIRED}
    for line, row in enumerate(reader, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header) - 1 or len(row) <= max(index.values()):  # a trailing comma is Noren's habit
            yield (line, f"{len(row)} columns where the header has {len(header)}")
            continue
        exchange, token, symbol = (row[index[column]].strip() for column in REQUIRED)
        ours = EXCHANGES_BACK.get(exchange)
        if ours is None or (expect is not None and ours != expect):
            yield (line, f"exchange {exchange[:10]!r} is not this file's")
            continue
        if not token.isalnum() or len(token) > 20:
            yield (line, f"token {token[:20]!r} is not a token")
            continue
        if not symbol or len(symbol) > 64:
            yield (line, "no trading symbol")
            continue
        yield MasterRow(
            exchange=ours,
            exchange_token=token,
            token=f"{exchange}|{token}",
            tradingsymbol=symbol,
            broker_exchange=exchange,
        )
