"""Angel One's scrip master (OpenAPIScripMaster.json) read into the broker mapping."""

from __future__ import annotations

import json

import pytest

from brokers.adapters.base import BrokerError, BrokerUnavailable
from brokers.families.master import MasterImportRefused, MasterRow, master_import
from brokers.models import BrokerInstrument
from families.angel.adapter import AngelAdapter
from families.angel.master import parse_master
from tests.families.angel import server as angel


def test_the_file_gives_a_row_per_instrument_of_our_exchanges():
    rows = list(parse_master(json.dumps(angel.MASTER).encode()))
    assert MasterRow("NSE", "2885", "NSE:2885", "RELIANCE-EQ", "NSE") in rows
    assert MasterRow("BSE", "500325", "BSE:500325", "RELIANCE", "BSE") in rows
    assert MasterRow("NFO", "35001", "NFO:35001", "NIFTY26DECFUT", "NFO") in rows
    assert not any(isinstance(row, MasterRow) and row.broker_exchange == "NCDEX" for row in rows)  # not ours
    assert not any(isinstance(row, tuple) for row in rows)


def test_unreadable_entries_are_named_by_their_place_in_the_file():
    entries = [
        angel.MASTER[0],
        "a string",
        {"token": "12a", "symbol": "X-EQ", "exch_seg": "NSE"},
        {"token": "1594", "exch_seg": "NSE"},
        {"token": "1594", "symbol": "INFY-EQ"},
        {"token": 1594, "symbol": "INFY-EQ", "exch_seg": "NSE"},
    ]
    rows = list(parse_master(json.dumps(entries).encode()))
    errors = [row for row in rows if isinstance(row, tuple)]
    assert [line for line, _ in errors] == [2, 3, 4, 5]
    assert "not a number" in errors[1][1] and errors[2][1] == "no symbol" and errors[3][1] == "no exch_seg"
    assert MasterRow("NSE", "1594", "NSE:1594", "INFY-EQ", "NSE") in rows  # a number token is read too


@pytest.mark.parametrize("content", [b"{not json", b'{"data": []}', b"null"])
def test_a_file_that_is_not_a_json_array_is_refused(content):
    with pytest.raises(BrokerUnavailable):
        list(parse_master(content))


@pytest.mark.django_db
def test_the_downloaded_master_maps_reliance_and_a_short_file_is_refused(world, angel_server):
    report = master_import("angel", AngelAdapter.master_rows("angelone"))
    assert report.mapped == 2 and report.error_count == 0  # the world holds RELIANCE (NSE 2885) and NFO 35001
    mapped = BrokerInstrument.objects.get(broker="angel", instrument=world.equity)
    assert (mapped.token, mapped.tradingsymbol, mapped.exchange) == ("NSE:2885", "RELIANCE-EQ", "NSE")
    angel_server.master = angel.MASTER[:1]
    with pytest.raises(MasterImportRefused):
        master_import("angel", AngelAdapter.master_rows("angelone"), min_rows=100)
    assert BrokerInstrument.objects.filter(broker="angel").count() == 2


@pytest.mark.django_db
def test_a_failed_download_is_a_typed_error(settings):
    settings.BROKER_ENDPOINTS = {"angelone": {"master": "http://127.0.0.1:9/OpenAPIScripMaster.json"}}
    with pytest.raises(BrokerError):  # unreachable: nothing listens on port 9
        list(AngelAdapter.master_rows("angelone"))
