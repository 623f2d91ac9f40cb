"""XTS's instrument master into ``MasterRow``s.

``POST /apimarketdata/instruments/master {"exchangeSegmentList": ["NSECM", ...]}`` answers the envelope
with ``result`` one pipe-delimited text, an instrument a line (Connect.py ``get_master``). Every
layout starts ``ExchangeSegment|ExchangeInstrumentID|InstrumentType|Name|Description|...``: cash
instruments go on with ``Series|NameWithSeries|InstrumentID|PriceBand.High|PriceBand.Low|FreezeQty|
TickSize|LotSize|Multiplier|...``, derivatives add their underlying, expiry, strike and option type
after ``Multiplier``. The exchange instrument id is the exchange's own token (NSE's, BSE's, MCX's),
our ``Instrument.exchange_token``; ``Description`` is XTS's trading symbol ("RELIANCE-EQ").
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from brokers.families.master import MasterRow
from families.xts.mapping import EXCHANGES, token_of

SEGMENTS = ("NSECM", "NSEFO", "NSECD", "BSECM", "BSEFO", "MCXFO")
MIN_COLUMNS = 5


def parse_master(text: str) -> Iterator[MasterRow | tuple[int, str]]:
    """Each line of the master as a MasterRow, or (line number, why) for one that cannot be read."""
    yield from parse_lines(text.splitlines())


def parse_lines(lines: Iterable[str]) -> Iterator[MasterRow | tuple[int, str]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) < MIN_COLUMNS:
            yield number, f"{len(fields)} columns, fewer than the {MIN_COLUMNS} every XTS master row has"
            continue
        segment, instrument_id, description = fields[0].strip(), fields[1].strip(), fields[4].strip()
        exchange = EXCHANGES.get(segment)
        if exchange is None:
            yield number, f"unknown exchange segment {segment[:20]!r}"
            continue
        try:
            token = token_of(segment, instrument_id)
        except ValueError as error:
            yield number, str(error)
            continue
        if not description or len(description) > 64:
            yield number, "no trading symbol (Description)"
            continue
        yield MasterRow(
            exchange=exchange,
            exchange_token=str(int(instrument_id)),
            token=token,
            tradingsymbol=description,
            broker_exchange=segment,
        )
