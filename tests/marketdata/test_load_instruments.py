import gzip
import json
from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from marketdata.models import Instrument

pytestmark = pytest.mark.django_db


def _load(path, fmt):
    out, err = StringIO(), StringIO()
    call_command("load_instruments", str(path), format=fmt, no_progress=True, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


KITE_HEADER = "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,lot_size,"
KITE = (
    KITE_HEADER
    + """instrument_type,segment,exchange
738561,2885,RELIANCE,RELIANCE INDUSTRIES,0,,0,0.1,1,EQ,NSE,NSE
256265,1001,NIFTY 50,NIFTY 50,0,,0,0,0,EQ,INDICES,NSE
12345602,48225,NIFTY26DEC26000CE,NIFTY,0,2026-12-29,26000,0.05,65,CE,NFO-OPT,NFO
12345603,48226,NIFTY26DECFUT,NIFTY,0,not-a-date,0,0.05,65,FUT,NFO-FUT,NFO
12345604,48227,BANKNIFTY26DECFUT,BANKNIFTY,0,2026-12-29,0,0.05,-30,FUT,NFO-FUT,NFO
12345605,48228,FINNIFTY26DECFUT,FINNIFTY,0,2026-12-29,0,0.05,60,FUT,NFO-FUT,XYZ
"""
)


def test_a_kite_dump_loads_its_good_rows_and_reports_each_bad_one_by_line(tmp_path):
    path = tmp_path / "instruments.csv"
    path.write_text(KITE)
    out, err = _load(path, "kite")
    assert "3 created, 0 updated, 3 rejected" in out
    assert "line 5: expiry 'not-a-date' is not a date" in err
    assert "line 6: lot_size '-30' must be a positive whole number" in err
    assert "line 7: exchange 'XYZ' is not one of" in err
    option = Instrument.objects.get(exchange="NFO", tradingsymbol="NIFTY26DEC26000CE")
    assert (option.instrument_type, option.underlying, option.strike, option.lot_size, option.expiry) == (
        "CE",
        "NIFTY",
        Decimal("26000"),
        65,
        date(2026, 12, 29),
    )
    assert Instrument.objects.get(tradingsymbol="NIFTY 50").instrument_type == "INDEX"


def test_loading_the_same_file_twice_changes_nothing(tmp_path):
    path = tmp_path / "instruments.csv"
    path.write_text(KITE)
    _load(path, "kite")
    before = list(Instrument.objects.order_by("pk").values_list("pk", "exchange_token", "lot_size"))
    out, _ = _load(path, "kite")
    assert "0 created, 3 updated, 3 rejected" in out
    assert list(Instrument.objects.order_by("pk").values_list("pk", "exchange_token", "lot_size")) == before


ANGEL = [
    {"token": "2885", "symbol": "RELIANCE-EQ", "name": "RELIANCE", "expiry": "", "strike": "-1.000000",
     "lotsize": "1", "instrumenttype": "", "exch_seg": "NSE", "tick_size": "10.000000"},
    {"token": "45829", "symbol": "NIFTY29DEC2626000CE", "name": "NIFTY", "expiry": "29DEC2026",
     "strike": "2600000.000000", "lotsize": "65", "instrumenttype": "OPTIDX", "exch_seg": "NFO",
     "tick_size": "5.000000"},
    {"token": "45830", "symbol": "NIFTY29DEC26FUT", "name": "NIFTY", "expiry": "29Dec2026",
     "strike": "-1.000000", "lotsize": "65", "instrumenttype": "FUTIDX", "exch_seg": "NFO", "tick_size": "5.000000"},
    {"token": "99926000", "symbol": "Nifty 50", "name": "NIFTY", "expiry": "", "strike": "0.000000",
     "lotsize": "1", "instrumenttype": "AMXIDX", "exch_seg": "NSE", "tick_size": "-1.000000"},
    {"token": "1594", "symbol": "INFY-EQ", "name": "INFY", "expiry": "", "strike": "-1.000000",
     "lotsize": "one", "instrumenttype": "", "exch_seg": "NSE", "tick_size": "10.000000"},
    {"token": "1", "symbol": "GOLD", "name": "GOLD", "expiry": "05FEB2027", "strike": "-1",
     "lotsize": "1", "instrumenttype": "COMDTY", "exch_seg": "MCX", "tick_size": "100"},
]  # fmt: skip


def test_an_angel_scrip_master_maps_paise_and_instrument_types(tmp_path):
    path = tmp_path / "OpenAPIScripMaster.json.gz"
    path.write_bytes(gzip.compress(json.dumps(ANGEL).encode()))
    out, err = _load(path, "angel")
    assert "4 created, 0 updated, 2 rejected" in out
    assert "line 5: lot_size 'one' is not a whole number" in err
    assert "line 6: instrument type 'COMDTY' is not supported" in err
    assert Instrument.objects.get(exchange_token="99926000").instrument_type == "INDEX"
    option = Instrument.objects.get(tradingsymbol="NIFTY29DEC2626000CE")
    assert (option.strike, option.tick_size, option.segment, option.expiry) == (
        Decimal("26000"),
        Decimal("0.05"),
        "NFO-OPT",
        date(2026, 12, 29),
    )
    assert Instrument.objects.get(tradingsymbol="RELIANCE-EQ").tick_size == Decimal("0.10")
    assert Instrument.objects.get(tradingsymbol="NIFTY29DEC26FUT").instrument_type == "FUT"


UPSTOX = [
    {"segment": "NSE_EQ", "name": "RELIANCE INDUSTRIES LTD", "exchange": "NSE", "isin": "INE002A01018",
     "instrument_type": "EQ", "instrument_key": "NSE_EQ|INE002A01018", "lot_size": 1, "freeze_quantity": 100000.0,
     "exchange_token": "2885", "tick_size": 10.0, "trading_symbol": "RELIANCE"},
    {"segment": "NSE_FO", "name": "NIFTY", "exchange": "NSE", "expiry": 1798538399000, "instrument_key": "NSE_FO|48225",
     "exchange_token": "48225", "trading_symbol": "NIFTY 26000 CE 29 DEC 26", "tick_size": 5.0, "lot_size": 65,
     "instrument_type": "CE", "freeze_quantity": 1800.0, "underlying_symbol": "NIFTY", "strike_price": 26000.0},
    {"segment": "NSE_INDEX", "name": "Nifty 50", "exchange": "NSE", "instrument_key": "NSE_INDEX|Nifty 50",
     "exchange_token": "26000", "trading_symbol": "NIFTY", "tick_size": 5.0, "lot_size": 0, "instrument_type": "INDEX"},
]  # fmt: skip


def test_an_upstox_json_file_maps_segments_expiry_and_freeze_quantity(tmp_path):
    path = tmp_path / "complete.json"
    path.write_text(json.dumps(UPSTOX))
    out, err = _load(path, "upstox")
    assert "3 created, 0 updated, 0 rejected" in out, err
    option = Instrument.objects.get(exchange="NFO", tradingsymbol="NIFTY 26000 CE 29 DEC 26")
    assert (option.expiry, option.strike, option.freeze_quantity, option.tick_size, option.underlying) == (
        date(2026, 12, 29),
        Decimal("26000"),
        1800,
        Decimal("0.05"),
        "NIFTY",
    )
    assert Instrument.objects.get(exchange="NSE", exchange_token="26000").instrument_type == "INDEX"


def test_a_row_reusing_another_contracts_exchange_token_is_rejected(tmp_path):
    path = tmp_path / "master.csv"
    path.write_text(
        "exchange,tradingsymbol,exchange_token,instrument_type\n"
        "NSE,RELIANCE,2885,EQ\n"
        "NSE,TCS,2885,EQ\n"
        "NSE,RELIANCE,2885,EQ\n"
    )
    out, err = _load(path, "csv")
    assert "1 created" in out and "2 rejected" in out
    assert "line 3: exchange token 2885 is also used on line 2" in err
    assert "line 4: NSE:RELIANCE appears earlier in the file" in err
    later = tmp_path / "later.csv"
    later.write_text("exchange,tradingsymbol,exchange_token,instrument_type\nNSE,INFY,2885,EQ\n")
    out, err = _load(later, "csv")
    assert "line 2: exchange token 2885 belongs to NSE:RELIANCE" in err


def test_a_file_in_the_wrong_layout_is_refused_as_a_whole(tmp_path):
    path = tmp_path / "master.csv"
    path.write_text("symbol,price\nRELIANCE,1500\n")
    with pytest.raises(CommandError, match="not a kite instrument CSV: missing columns"):
        _load(path, "kite")
    with pytest.raises(CommandError, match="no such file"):
        _load(tmp_path / "missing.csv", "csv")


def test_the_sample_master_loads_with_real_lot_sizes_and_freeze_limits():
    out = StringIO()
    call_command("load_instruments", sample=True, no_progress=True, stdout=out)
    assert "rejected" in out.getvalue() and " 0 rejected" in out.getvalue()
    assert Instrument.objects.filter(exchange="NSE", instrument_type="EQ").count() == 50
    indices = dict(Instrument.objects.filter(instrument_type="INDEX").values_list("underlying", "tradingsymbol"))
    assert set(indices) == {"NIFTY", "BANKNIFTY", "FINNIFTY"}
    futures = {i.underlying: i for i in Instrument.objects.filter(exchange="NFO", instrument_type="FUT")}
    assert len(futures) == 53
    assert (futures["NIFTY"].lot_size, futures["NIFTY"].freeze_quantity) == (65, 1800)
    assert (futures["BANKNIFTY"].lot_size, futures["BANKNIFTY"].freeze_quantity) == (30, 600)
    assert futures["RELIANCE"].freeze_quantity % futures["RELIANCE"].lot_size == 0
    assert Instrument.objects.filter(underlying="NIFTY", instrument_type="CE").count() == 21
    call_command("load_instruments", sample=True, no_progress=True, stdout=out)
    assert Instrument.objects.count() == 1340


def test_the_sample_master_loads_bse_shares_and_near_mcx_futures_that_search_finds(sample_master):
    from marketdata.selectors import instrument_search

    bse = {i.tradingsymbol: i for i in Instrument.objects.filter(exchange="BSE")}
    assert set(bse) == {"RELIANCE", "TCS", "SBIN", "ITC", "BHARTIARTL"}
    assert all(i.segment == "BSE" and i.instrument_type == "EQ" and i.lot_size == 1 for i in bse.values())
    assert (bse["TCS"].tick_size, bse["TCS"].lower_circuit, bse["TCS"].upper_circuit) == (
        Decimal("0.05"),
        Decimal("2520"),
        Decimal("3780"),
    )
    mcx = {i.underlying: i for i in Instrument.objects.filter(exchange="MCX")}
    assert set(mcx) == {"GOLDM", "SILVERM", "CRUDEOIL"}
    # the sample is for 25 Nov 2026: GOLDM expires on the 5th (a Saturday: Friday the 4th), CRUDEOIL on
    # the 19th (a Saturday: the 18th), SILVERM on the last day of November
    expected = {
        "GOLDM": ("GOLDM26DECFUT", date(2026, 12, 4), 10),
        "CRUDEOIL": ("CRUDEOIL26DECFUT", date(2026, 12, 18), 100),
        "SILVERM": ("SILVERM26NOVFUT", date(2026, 11, 30), 5),
    }
    assert {u: (i.tradingsymbol, i.expiry, i.lot_size) for u, i in mcx.items()} == expected
    assert all(i.segment == "MCX-FUT" and i.instrument_type == "FUT" and i.tick_size == 1 for i in mcx.values())
    assert [i.tradingsymbol for i in instrument_search(query="GOLDM")] == ["GOLDM26DECFUT"]
    assert [(i.exchange, i.tradingsymbol) for i in instrument_search(query="TCS", instrument_type="EQ")] == [
        ("NSE", "TCS"),
        ("BSE", "TCS"),
    ]
    assert [i.tradingsymbol for i in instrument_search(query="crude", exchange="MCX")] == ["CRUDEOIL26DECFUT"]


def test_mcx_expiries_roll_to_the_next_contract_once_the_near_one_has_passed():
    from marketdata.sample_master import mcx_expiry

    assert mcx_expiry("GOLDM", date(2026, 1, 5)) == date(2026, 1, 5)
    assert mcx_expiry("GOLDM", date(2026, 1, 6)) == date(2026, 2, 5)
    assert mcx_expiry("CRUDEOIL", date(2026, 12, 19)) == date(2027, 1, 19)
    assert mcx_expiry("SILVERM", date(2026, 12, 1)) == date(2027, 2, 26)  # February's last day is a Sunday
