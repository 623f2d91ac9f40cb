"""Kite's instruments dump into the symbol master and the Kite mapping: parsed one row at a time,
imported whole or not at all, updated in place, and every refusal counted for the alert."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from brokers import instrument_map as map_module
from brokers.models import BrokerInstrument
from brokers.selectors import broker_symbol_for, instrument_id_for_token
from kite import instruments as kite_instruments
from kite.instruments import InstrumentImportFailed, parse_instruments, refresh_instruments
from marketdata.models import Instrument

FIXTURE = Path(__file__).parent / "fixtures" / "instruments.csv"
TEXT = FIXTURE.read_bytes().decode()
LINES = TEXT.splitlines(keepends=True)
TODAY = date(2026, 12, 7)
LOADED = 33  # 35 rows, 2 of BCD (an exchange the master does not list)


def _stream(text: str = TEXT) -> io.StringIO:
    return io.StringIO(text, newline="")


def _import(text: str = TEXT, **kwargs):
    options = {"min_percent": 80, "min_rows": 1, "today": TODAY} | kwargs
    return refresh_instruments(lambda: _stream(text), **options)


def _snapshot() -> tuple[list, list]:
    """Everything an import may write, to compare before and after a refused one."""
    fields = [f.attname for f in Instrument._meta.concrete_fields]
    return (
        list(Instrument.objects.order_by("pk").values_list(*fields)),
        list(BrokerInstrument.objects.order_by("pk").values_list()),
    )


def _failures(reason: str) -> float:
    return REGISTRY.get_sample_value("terminal_kite_instruments_import_failures_total", {"reason": reason}) or 0.0


@pytest.fixture(autouse=True)
def _fresh_maps():
    map_module._maps.clear()
    map_module._map_state.update(version=None, checked_at=0.0)
    yield
    map_module._maps.clear()


# --- Parsing ---------------------------------------------------------------------------------------


def test_kites_vocabulary_becomes_ours_row_by_row():
    rows = {
        item.row["exchange"] + ":" + item.row["tradingsymbol"]: item
        for item in parse_instruments(_stream())
        if item.row
    }
    skipped = [item.skipped for item in parse_instruments(_stream()) if item.skipped]
    assert skipped == ["BCD", "BCD"]
    assert len(rows) == LOADED
    nifty = rows["NSE:NIFTY 50"]
    assert (nifty.row["instrument_type"], nifty.row["segment"], nifty.row["lot_size"], nifty.row["tick_size"]) == (
        "INDEX",
        "INDICES",
        "1",
        "",
    )
    assert rows["BSE:SENSEX"].row["instrument_type"] == rows["MCX:MCXCOMPDEX"].row["instrument_type"] == "INDEX"
    option = rows["NFO:NIFTY26D0826000CE"]
    assert (
        option.row.items()
        >= {"instrument_type": "CE", "underlying": "NIFTY", "strike": "26000", "expiry": "2026-12-08"}.items()
    )
    assert option.listing.token == "300003" and option.listing.broker_exchange == "NFO"
    assert rows["NSE:INFY"].row["strike"] == "" and rows["NSE:INFY"].row["underlying"] == ""
    assert rows["CDS:USDINR26DEC90.5CE"].row["segment"] == "CDS-OPT"
    assert rows["MCX:CRUDEOIL26DEC5500CE"].row["underlying"] == "CRUDEOIL"


def test_a_token_is_a_positive_whole_number_once_per_file():
    extra = [
        "abc,1,X1,,0,,0,0.05,1,EQ,NSE,NSE\r\n",
        "100001,2,X2,,0,,0,0.05,1,EQ,NSE,NSE\r\n",
        "\u0661\u0662,3,X3,,0,,0,0.05,1,EQ,NSE,NSE\r\n",  # Arabic-Indic digits are digits, but not ours
    ]
    errors = {item.line: item.error.message for item in parse_instruments(LINES + extra) if item.error}
    assert errors == {
        37: "instrument_token 'abc' is not a positive whole number",
        38: "instrument_token 100001 appears earlier in the file",
        39: "instrument_token '١٢' is not a positive whole number",
    }


# --- Importing -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_dump_loads_the_master_and_the_mapping():
    report = _import()
    assert (report.rows, report.created, report.updated, report.errors) == (35, LOADED, 0, [])
    assert report.skipped == {"BCD": 2}
    assert (report.mapped, report.previous, report.retired, report.expired) == (LOADED, 0, 0, 3)
    assert Instrument.objects.count() == BrokerInstrument.objects.filter(broker="kite").count() == LOADED
    expired = set(Instrument.objects.filter(is_active=False).values_list("tradingsymbol", flat=True))
    assert expired == {"NIFTY26D0125900CE", "NIFTY26NOVFUT", "GOLDM26DECFUT"}
    infy = Instrument.objects.get(exchange="NSE", tradingsymbol="INFY")
    assert instrument_id_for_token(broker="kite", token=100001) == infy.pk
    assert broker_symbol_for(broker="kite", instrument_id=infy.pk).token == "100001"
    bse = Instrument.objects.get(exchange="BSE", tradingsymbol="INFY")
    assert instrument_id_for_token(broker="kite", token="200001") == bse.pk


@pytest.mark.django_db
def test_importing_the_same_dump_again_changes_nothing_and_keeps_every_id():
    _import()
    before = _snapshot()
    report = _import()
    assert (report.created, report.updated, report.previous, report.mapped) == (0, LOADED, LOADED, LOADED)
    after = _snapshot()
    drop_updated_at = next(i for i, f in enumerate(Instrument._meta.concrete_fields) if f.name == "updated_at")
    strip = lambda rows, skip: [tuple(v for i, v in enumerate(row) if i != skip) for row in rows]  # noqa: E731
    assert strip(after[0], drop_updated_at) == strip(before[0], drop_updated_at)
    assert [row[:6] for row in after[1]] == [row[:6] for row in before[1]], "mapping rows and ids as they were"


@pytest.mark.django_db
def test_a_new_dump_updates_in_place_and_retires_what_it_no_longer_lists():
    _import()
    ids = dict(Instrument.objects.values_list("tradingsymbol", "pk").filter(exchange="NFO"))
    changed = [
        line.replace(",65,FUT,NFO-FUT,NFO", ",75,FUT,NFO-FUT,NFO")  # the exchange revised the NIFTY lot
        for line in LINES
        if "INFY26DEC1600CE" not in line  # delisted
    ]
    changed.append('300099,40099,NIFTY27FEBFUT,"NIFTY",26400,2027-02-24,0,0.1,75,FUT,NFO-FUT,NFO\r\n')
    report = _import("".join(changed))
    assert (report.created, report.updated, report.retired) == (1, LOADED - 1, 1)
    future = Instrument.objects.get(tradingsymbol="NIFTY26DECFUT")
    assert future.pk == ids["NIFTY26DECFUT"] and future.lot_size == 75
    gone = Instrument.objects.get(tradingsymbol="INFY26DEC1600CE")
    assert gone.pk == ids["INFY26DEC1600CE"] and not gone.is_active
    assert not BrokerInstrument.objects.filter(instrument=gone).exists()
    assert instrument_id_for_token(broker="kite", token="300009") is None


@pytest.mark.django_db
def test_a_row_that_cannot_be_read_is_reported_and_keeps_yesterdays_contract():
    _import()
    garbled = [line.replace("2026-12-29,1600", "2026-13-29,1600") for line in LINES]
    report = _import("".join(garbled))
    assert report.errors == [(22, "expiry '2026-13-29' is not a date")]
    option = Instrument.objects.get(tradingsymbol="INFY26DEC1600CE")
    assert option.is_active and option.expiry == date(2026, 12, 29)
    assert instrument_id_for_token(broker="kite", token="300009") == option.pk


# --- Refusals: the previous master and mapping stand -----------------------------------------------

CUT_MID_ROW = TEXT[: TEXT.index("BANKNIFTY26DECFUT") + 5]
REFUSALS = {
    "cut mid-row": (CUT_MID_ROW, {}, "malformed", "has 3 cells where the header has 12"),
    "cut inside the last cell": (TEXT[:-4], {}, "malformed", "no line break: the file ends mid-row"),
    "a row missing cells": (
        "".join(LINES[:10]) + "100010,1010,ITC\r\n" + "".join(LINES[10:]),
        {},
        "malformed",
        "line 11 has 3 cells",
    ),
    "a missing column": (TEXT.replace(",segment,", ",", 1), {}, "malformed", "missing columns segment"),
    "an empty file": ("", {}, "malformed", "missing columns"),
    "too small against the mapping": (
        "".join(LINES[:20]),
        {},
        "implausible",
        "19 instruments loaded where the Kite mapping holds 33 (at least 27 needed)",
    ),
    "below the floor": (TEXT, {"min_rows": 40}, "implausible", "at least 40 needed"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", REFUSALS)
def test_a_refused_dump_leaves_the_master_and_the_mapping_exactly_as_they_were(case):
    _import()
    Instrument.objects.filter(tradingsymbol="NIFTY26DECFUT").update(lot_size=50)  # yesterday's value
    before = _snapshot()
    text, options, reason, message = REFUSALS[case]
    counted = _failures(reason)
    with pytest.raises(InstrumentImportFailed) as caught:
        _import(text, **options)
    assert caught.value.reason == reason and message in caught.value.message
    assert _snapshot() == before
    assert _failures(reason) == counted + 1


@pytest.mark.django_db
def test_an_error_in_the_middle_of_the_import_writes_nothing(monkeypatch):
    _import()
    before = _snapshot()
    real = kite_instruments.from_kite

    def fails_at_row_20(record):
        if record["tradingsymbol"] == "INFY26DECFUT":
            raise RuntimeError("disk full")
        return real(record)

    monkeypatch.setattr(kite_instruments, "from_kite", fails_at_row_20)
    counted = _failures("error")
    with pytest.raises(InstrumentImportFailed, match="RuntimeError: disk full"):
        _import()
    assert _snapshot() == before
    assert _failures("error") == counted + 1


@pytest.mark.django_db
def test_an_error_after_the_rows_while_retiring_writes_nothing(monkeypatch):
    _import()
    before = _snapshot()

    def fails(**kwargs):
        raise RuntimeError("lost the connection")

    monkeypatch.setattr(kite_instruments, "broker_instruments_retire_unlisted", fails)
    with pytest.raises(InstrumentImportFailed):
        _import("".join(LINES[:-3]))
    assert _snapshot() == before


@pytest.mark.django_db
def test_a_download_that_fails_is_counted_and_writes_nothing():
    def unreachable():
        raise OSError("connection refused")

    counted = _failures("download")
    with pytest.raises(InstrumentImportFailed, match="could not be fetched: connection refused"):
        refresh_instruments(unreachable, min_percent=80, min_rows=1)
    assert _failures("download") == counted + 1


@pytest.mark.django_db
def test_the_map_of_other_processes_moves_on_once_the_import_commits(django_capture_on_commit_callbacks):
    from django.core.cache import cache

    version = cache.get(map_module.INSTRUMENT_MAP_VERSION_KEY, 0)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _import()
    assert len(callbacks) == 1
    assert cache.get(map_module.INSTRUMENT_MAP_VERSION_KEY) == version + 1
