"""The shared readers of symbol-master files, read as streams: a whole-or-nothing import reads them
strictly (a row cut short, bad quoting, a last line without its break end the reading), and every
reader refuses values the database could not hold."""

from __future__ import annotations

import io

import pytest

from marketdata.errors import InvalidInstrumentRow
from marketdata.importers import clean_row, from_kite, read_csv_stream

HEADER = (
    "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,lot_size,"
    "instrument_type,segment,exchange\r\n"
)
INFY = "408065,1594,INFY,INFOSYS,0,,0,0.05,1,EQ,NSE,NSE\r\n"
FUT = '13000,35001,NIFTY26DECFUT,"NIFTY",0,2026-12-29,0,0.1,65,FUT,NFO-FUT,NFO\r\n'


def _read(text: str, *, strict: bool = True) -> list:
    return list(read_csv_stream(io.StringIO(text, newline=""), "kite", strict=strict))


def test_a_complete_stream_is_read_row_by_row():
    rows = _read(HEADER + INFY + FUT)
    assert [line for line, _ in rows] == [2, 3]
    assert rows[1][1]["underlying"] == "NIFTY" and rows[1][1]["expiry"] == "2026-12-29"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (HEADER + INFY + FUT[:-3], "line 3 has no line break: the file ends mid-row"),
        (HEADER + INFY + FUT[:40] + "\r\n", "line 3 has 6 cells where the header has 12"),
        (HEADER + INFY.replace(",NSE\r\n", ",NSE,x\r\n") + FUT, "line 2 has 13 cells where the header has 12"),
        (HEADER + INFY + '13000,35001,NIFTY26DECFUT,"NIF', "after line 2: unexpected end of data"),
        (HEADER.replace(",segment", ""), "missing columns segment"),
        ("", "missing columns"),
    ],
)
def test_a_strict_reading_refuses_a_stream_cut_short(text, message):
    with pytest.raises(InvalidInstrumentRow) as caught:
        _read(text)
    assert message in caught.value.message


def test_a_lenient_reading_passes_short_rows_on_as_bad_rows():
    rows = _read(HEADER + INFY + FUT[:40] + "\r\n", strict=False)
    assert len(rows) == 2


def test_the_underlying_of_a_kite_contract_without_a_name_is_read_from_its_symbol():
    def underlying(symbol: str) -> str:
        record = dict(tradingsymbol=symbol, name="", instrument_type="CE", segment="NFO-OPT", exchange="NFO")
        return from_kite(record)["underlying"]

    assert underlying("BANKNIFTY18JAN23500CE") == "BANKNIFTY"
    assert underlying("NIFTY2511323500CE") == "NIFTY"
    assert underlying("360ONE25DEC1200CE") == "360ONE"
    assert underlying("M&M26JAN3000CE") == "M&M"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tradingsymbol": "IN\x00FY"}, "tradingsymbol contains a NUL byte"),
        ({"tick_size": "0.00001"}, "tick_size '0.00001' is out of range"),
        ({"lot_size": "Infinity"}, "lot_size 'Infinity' is not a whole number"),
        ({"lot_size": "9" * 5000}, "must be a positive whole number"),
    ],
)
def test_values_no_column_can_hold_are_refused(change, message):
    row = {"exchange": "NSE", "tradingsymbol": "INFY", "exchange_token": "1594", "instrument_type": "EQ"} | change
    with pytest.raises(InvalidInstrumentRow) as caught:
        clean_row(row)
    assert message in caught.value.message
