"""Fyers' symbol master: a good file, bad rows named by line, a short file refused, a failed download."""

from __future__ import annotations

import pytest

from brokers.adapters.base import BrokerError
from brokers.families.master import MasterImportRefused, MasterRow, master_import
from brokers.models import BrokerInstrument
from families.fyers.adapter import FyersAdapter
from families.fyers.master import parse_files, parse_master
from tests.families.fyers.kit import FyersKit, master_csv, master_row

EQUITY = master_row("10100000002885", "RELIANCE INDUSTRIES LTD", "NSE:RELIANCE-EQ", "2885")
FUTURE = master_row("101125082835001", "NIFTY 25 Aug FUT", "NSE:NIFTY25AUGFUT", "35001", segment="11")
BSE = master_row("12100000500325", "RELIANCE INDUSTRIES LTD", "BSE:RELIANCE-A", "500325", exchange="12")
MCX = master_row("11202508290000", "CRUDEOIL 25 Aug FUT", "MCX:CRUDEOIL25AUGFUT", "429116", exchange="11", segment="20")


def test_good_rows_are_the_exchange_token_and_fyers_names():
    text = master_csv([EQUITY, FUTURE, BSE, MCX]).decode()
    assert list(parse_master(text)) == [
        MasterRow("NSE", "2885", "10100000002885", "NSE:RELIANCE-EQ", "NSE_CM"),
        MasterRow("NFO", "35001", "101125082835001", "NSE:NIFTY25AUGFUT", "NSE_FO"),
        MasterRow("BSE", "500325", "12100000500325", "BSE:RELIANCE-A", "BSE_CM"),
        MasterRow("MCX", "429116", "11202508290000", "MCX:CRUDEOIL25AUGFUT", "MCX_COM"),
    ]


def test_bad_rows_are_named_by_line_and_why():
    rows = [
        EQUITY,
        EQUITY[:10],  # too few columns
        ["ABC", *EQUITY[1:]],  # not a fytoken
        [*EQUITY[:10], "13", *EQUITY[11:]],  # an exchange we do not trade
        [*EQUITY[:9], "BSE:RELIANCE-EQ", *EQUITY[10:]],  # the ticker of another exchange
        ["10110000002885", *EQUITY[1:]],  # the fytoken of another segment
        [*EQUITY[:12], "28 85", *EQUITY[13:]],  # not an exchange token
    ]
    parsed = list(parse_master(master_csv(rows).decode(), source="NSE_CM"))
    assert isinstance(parsed[0], MasterRow)
    assert [item[0] for item in parsed[1:]] == [2, 3, 4, 5, 6, 7]
    assert all(isinstance(item, tuple) and item[1].startswith("NSE_CM: ") for item in parsed[1:])
    assert "columns" in parsed[1][1] and "fytoken" in parsed[2][1] and "ticker" in parsed[4][1]


def test_a_file_that_is_not_text_is_one_bad_row():
    assert list(parse_files([("NSE_CM", b"\xff\xfe\x00bad")])) == [(0, "NSE_CM: the file is not UTF-8 text")]


@pytest.mark.django_db
def test_the_downloaded_master_maps_our_instruments(world, fyers_server):
    fyers_server.master = {name.removesuffix(".csv"): body for name, body in FyersKit().master_file().items()}
    report = master_import("fyers", FyersAdapter.master_rows("fyers"))
    assert report.mapped == 2 and report.unmatched == 1 and report.error_count == 0  # SBIN is not in our master
    assert BrokerInstrument.objects.get(broker="fyers", instrument=world.equity).token == "10100000002885"
    future = BrokerInstrument.objects.get(broker="fyers", instrument=world.future)
    assert (future.token, future.tradingsymbol, future.exchange) == ("101125082835001", "NSE:NIFTY25AUGFUT", "NSE_FO")
    assert {r.path for r in fyers_server.requests} == {f"/sym_details/{n}.csv" for n in fyers_server.master}


@pytest.mark.django_db
def test_a_short_master_is_refused_and_changes_nothing(world, fyers_server):
    fyers_server.master = {name.removesuffix(".csv"): b"" for name in FyersKit().master_file()}
    with pytest.raises(MasterImportRefused):
        master_import("fyers", FyersAdapter.master_rows("fyers"), min_rows=100)
    assert not BrokerInstrument.objects.filter(broker="fyers").exists()


@pytest.mark.django_db
def test_a_file_that_cannot_be_downloaded_fails_before_anything_is_read(fyers_server):
    fyers_server.master = {"NSE_CM": master_csv([EQUITY])}  # the other segments' files are missing
    with pytest.raises(BrokerError):
        FyersAdapter.master_rows("fyers")
