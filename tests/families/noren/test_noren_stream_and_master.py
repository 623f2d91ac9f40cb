"""The NorenOMS websocket dialect against the README's sample messages (touchline snapshot then deltas
merged), order updates into BrokerUpdates, and the zipped symbol masters (good rows, bad rows named,
a short file refused)."""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokers.families.master import MasterImportRefused, MasterRow, master_import
from brokers.families.stream import Decoded, MalformedFrame
from families.noren.adapter import update_of
from families.noren.master import parse_master
from families.noren.stream import NorenDialect
from tests.families.noren.kit import NSE_MASTER
from tests.families.noren.server import zipped

# The README's sample touchline: a tk, then tf messages carrying only what changed.
TK = {"t": "tk", "e": "NSE", "tk": "11630", "ts": "NTPC-EQ", "pp": "2", "ls": "1", "ti": "0.05", "lp": "118.55",
      "h": "118.65", "l": "118.10", "ap": "118.39", "v": "162220", "bp1": "118.45", "sp1": "118.50", "bq1": "26",
      "sq1": "6325"}  # fmt: skip
TF1 = {"t": "tf", "e": "NSE", "tk": "11630", "lp": "118.45", "ap": "118.40", "v": "166637", "sp1": "118.55",
       "bq1": "3135", "sq1": "30"}  # fmt: skip
TF2 = {"t": "tf", "e": "NSE", "tk": "11630", "lp": "118.60"}


def dialect(**options) -> NorenDialect:
    return NorenDialect(url="ws://127.0.0.1:1/NorenWSTP/", uid="FA12345", actid="FA12345", token="tok", **options)


def test_the_session_opens_with_connect_and_subscribes_once_acknowledged():
    d = dialect(orders=True)
    (connect,) = d.opening()
    assert json.loads(connect) == {"t": "c", "uid": "FA12345", "actid": "FA12345", "susertoken": "tok", "source": "API"}
    assert d.subscribe(["NSE|22", "NFO|35003"]) == []  # held until the acknowledgement
    replies = d.decode(json.dumps({"t": "ck", "s": "OK"})).replies
    assert [json.loads(r) for r in replies] == [{"t": "t", "k": "NSE|22#NFO|35003"}, {"t": "o", "actid": "FA12345"}]
    assert [json.loads(m) for m in d.subscribe(["BSE|500325"])] == [{"t": "t", "k": "BSE|500325"}]
    assert json.loads(d.heartbeat()) == {"t": "h"}


def test_a_refused_connection_is_a_malformed_message():
    with pytest.raises(MalformedFrame):
        dialect().decode(json.dumps({"t": "ck", "s": "Not_Ok"}))


def test_a_touchline_snapshot_then_deltas_merge_into_full_ticks():
    d = dialect()
    first = d.decode(json.dumps(TK)).ticks[0]
    assert (first.token, first.ltp, first.bid, first.ask, first.bid_qty, first.volume) == (
        "NSE|11630",
        Decimal("118.55"),
        Decimal("118.45"),
        Decimal("118.50"),
        26,
        162220,
    )
    second = d.decode(json.dumps(TF1)).ticks[0]
    assert (second.ltp, second.bid, second.ask, second.bid_qty, second.ask_qty, second.high) == (
        Decimal("118.45"),
        Decimal("118.45"),
        Decimal("118.55"),
        3135,
        30,
        Decimal("118.65"),
    )  # bp1 and h were not resent: kept from before
    third = d.decode(json.dumps(TF2)).ticks[0]
    assert (third.ltp, third.ask, third.volume) == (Decimal("118.60"), Decimal("118.55"), 166637)


def test_a_reconnect_forgets_the_old_pictures():
    d = dialect()
    d.decode(json.dumps(TK))
    d.opening()
    assert d.decode(json.dumps(TF2)).ticks[0].bid is None


def test_depth_levels_are_read():
    message = {"t": "dk", "e": "NSE", "tk": "22", "lp": "2000.00", "bp1": "1999.95", "bq1": "5", "bo1": "2",
               "bp2": "1999.90", "bq2": "7", "sp1": "2000.05", "sq1": "9", "ft": "1700000000"}  # fmt: skip
    tick = dialect(depth=True).decode(json.dumps(message)).ticks[0]
    assert [(level.price, level.quantity) for level in tick.bids] == [(Decimal("1999.95"), 5), (Decimal("1999.90"), 7)]
    assert tick.bids[0].orders == 2 and tick.ts is not None and tick.ts.timestamp() == 1700000000


@pytest.mark.parametrize(
    "message",
    ["{not json", "[]", '{"lp": "1"}', '{"t": "tk", "e": "NSE"}', '{"t": "tk", "e": "NSE", "tk": "22", "lp": "1e9"}',
     '{"t": "tf", "e": "NSE", "tk": "2#2", "lp": "1"}', b"\xff\xfe"],
)  # fmt: skip
def test_messages_not_in_norens_shape_are_malformed(message):
    with pytest.raises(MalformedFrame):
        dialect().decode(message)


def test_order_updates_and_other_acknowledgements_pass_through():
    d = dialect()
    om = {"t": "om", "norenordno": "1", "status": "OPEN", "remarks": "T1"}
    assert d.decode(json.dumps(om)).orders == [om]
    assert d.decode(json.dumps({"t": "ok"})) == Decoded()


@given(st.dictionaries(st.sampled_from(["t", "e", "tk", "lp", "v", "bp1", "bq1", "ft", "s"]),
                       st.one_of(st.text(max_size=12), st.integers(), st.none()), max_size=9))  # fmt: skip
def test_the_decoder_raises_nothing_but_malformed_frame(fields):
    with contextlib.suppress(MalformedFrame):
        assert isinstance(dialect().decode(json.dumps(fields)), Decoded)


# --- order updates ----------------------------------------------------------------------------------
FILL = {"t": "om", "norenordno": "24061800000001", "uid": "FA12345", "actid": "FA12345", "exch": "NSE",
        "tsym": "RELIANCE-EQ", "qty": "10", "prc": "990.00", "prd": "I", "status": "COMPLETE", "reporttype": "Fill",
        "trantype": "B", "prctyp": "LMT", "ret": "DAY", "fillshares": "10", "avgprc": "990.00",
        "fltm": "18-06-2024 10:15:02", "flid": "1001", "flqty": "10", "flprc": "990.00", "remarks": "AB12CD34",
        "exch_tm": "18-06-2024 10:15:02"}  # fmt: skip


def test_a_fill_update_carries_its_trade():
    update = update_of(7, FILL)
    assert update is not None
    assert (update.account_id, update.tag, update.broker_order_id, update.status) == (
        7,
        "AB12CD34",
        "24061800000001",
        "FILLED",
    )
    assert update.fill is not None and (update.fill.trade_id, update.fill.quantity, update.fill.price) == (
        "1001",
        10,
        Decimal("990.00"),
    )
    assert update.fill.ts.isoformat() == "2024-06-18T04:45:02+00:00"  # IST read as such
    assert update.filled_quantity == 10


def test_updates_of_other_kinds():
    cancelled = update_of(1, {**FILL, "status": "CANCELED", "reporttype": "Canceled", "fillshares": "0"})
    assert cancelled is not None and cancelled.status == "CANCELLED" and cancelled.fill is None
    rejected = update_of(1, {**FILL, "status": "REJECTED", "reporttype": "Rejected", "rejreason": "RMS:Blocked"})
    assert rejected is not None and rejected.status == "REJECTED" and rejected.message == "RMS:Blocked"
    assert update_of(1, {**FILL, "remarks": ""}) is None  # not an order of ours
    with pytest.raises(ValueError):
        update_of(1, {"t": "tk"})
    with pytest.raises(ValueError):
        update_of(1, {**FILL, "flqty": "ten"})


# --- the symbol master ---------------------------------------------------------------------------------
def test_a_master_file_reads_into_rows():
    rows = list(parse_master(zipped("NSE_symbols.txt", NSE_MASTER), expect="NSE"))
    assert rows == [
        MasterRow("NSE", "2885", "NSE|2885", "RELIANCE-EQ", "NSE"),
        MasterRow("NSE", "1594", "NSE|1594", "INFY-EQ", "NSE"),
    ]


def test_bad_rows_are_named_by_line_and_the_rest_read():
    text = (
        NSE_MASTER + "NSE,,1,X,X-EQ,EQ,0.05,\nNSE,12,1\nBSE,500325,1,RELIANCE,RELIANCE,EQ,0.05,\nNSE,13,1,Y,,EQ,0.05,\n"
    )
    rows = list(parse_master(zipped("NSE_symbols.txt", text), expect="NSE"))
    errors = [row for row in rows if isinstance(row, tuple)]
    assert [line for line, _ in errors] == [4, 5, 6, 7]
    assert sum(isinstance(row, MasterRow) for row in rows) == 2


@pytest.mark.parametrize(
    "content",
    [b"not a zip", zipped("NSE_symbols.txt", "Exchange,Symbol\nNSE,X\n")],
)
def test_a_file_that_is_not_a_master_is_refused(content):
    from brokers.adapters.base import BrokerUnavailable

    with pytest.raises(BrokerUnavailable):
        list(parse_master(content))


@pytest.mark.django_db
def test_a_short_master_is_refused_and_changes_nothing():
    rows = parse_master(zipped("NSE_symbols.txt", NSE_MASTER.splitlines(keepends=True)[0]), expect="NSE")
    with pytest.raises(MasterImportRefused):
        master_import("noren", rows, min_rows=1)
