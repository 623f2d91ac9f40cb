"""Upstox's JSON symbol master: read into rows, bad rows named by their place in the file, a file
that is not a whole JSON array refused, and a short file refused by the import."""

from __future__ import annotations

import gzip
import json

import pytest

from brokers.adapters.base import BrokerUnavailable
from brokers.families.master import MasterImportRefused, MasterRow, master_import
from families.upstox.master import download_master, parse_master
from tests.families.upstox.kit import master_rows


def test_a_good_file_gives_one_row_per_instrument():
    rows = list(parse_master(gzip.compress(json.dumps(master_rows()).encode())))
    assert rows[0] == MasterRow(
        exchange="NSE",
        exchange_token="2885",
        token="NSE_EQ|INE002A01018",
        tradingsymbol="RELIANCE",
        broker_exchange="NSE_EQ",
    )
    assert rows[2].exchange == "NFO" and rows[2].token == "NSE_FO|48225" and rows[2].exchange_token == "48225"


def test_a_plain_json_file_reads_too_and_numbers_as_tokens():
    row = {**master_rows()[0], "exchange_token": 2885}
    assert next(iter(parse_master(json.dumps([row]).encode()))).exchange_token == "2885"


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"segment": "XYZ_EQ"}, "unknown segment"),
        ({"instrument_key": "NSE_FO|2885"}, "is not of segment"),
        ({"exchange_token": "abc"}, "exchange_token"),
        ({"exchange_token": None}, "exchange_token"),
        ({"trading_symbol": ""}, "no trading_symbol"),
        ({"instrument_key": None}, "no instrument_key"),
    ],
)
def test_a_bad_row_is_named_by_its_line_and_the_others_still_read(change, why):
    good = master_rows()
    rows = list(parse_master(json.dumps([good[1], {**good[0], **change}, "not an object"]).encode()))
    assert isinstance(rows[0], MasterRow)
    line, reason = rows[1]
    assert line == 2 and why in reason
    assert rows[2] == (3, "not an object")


@pytest.mark.parametrize("raw", [b"", b"{}", b"[1, 2", gzip.compress(b"[{}")[:-4], b"\x1f\x8b broken"])
def test_a_file_that_is_not_a_whole_json_array_is_refused(raw):
    with pytest.raises(BrokerUnavailable):
        list(parse_master(raw))


@pytest.mark.django_db
def test_a_short_file_is_refused_and_a_full_one_maps_the_equity(world, server):
    with pytest.raises(MasterImportRefused):
        master_import("upstox", parse_master(json.dumps(master_rows()[:1]).encode()), min_rows=2)
    report = master_import("upstox", parse_master(download_master("upstox")), min_rows=2)
    assert report.rows == 3 and report.mapped >= 1 and report.error_count == 0


def test_a_failed_download_is_a_typed_error(settings, server):
    settings.BROKER_ENDPOINTS = {"upstox": {"master": server.url + "/assets/missing.json.gz"}}
    with pytest.raises(BrokerUnavailable):
        download_master("upstox")
    server.violations.clear()
