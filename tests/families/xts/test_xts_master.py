"""XTS's instrument master: a good file mapped, bad rows named by line, a short file refused."""

from __future__ import annotations

import pytest

from brokers.families.master import MasterImportRefused, MasterRow, master_import
from brokers.models import BrokerInstrument
from families.xts.adapter import XtsAdapter
from families.xts.master import parse_master
from tests.families.xts import server as xs


def test_the_documented_layouts_are_read():
    rows = list(parse_master(xs.MASTER_TEXT))
    assert rows[0] == MasterRow("NSE", "2885", "1_2885", "RELIANCE-EQ", "NSECM")
    assert rows[2] == MasterRow("NFO", "35001", "2_35001", "NIFTY24DECFUT", "NSEFO")


def test_bad_rows_are_named_by_line_and_the_rest_read():
    text = "\n".join(
        [
            "NSECM|2885|8|RELIANCE|RELIANCE-EQ|EQ",
            "NSECM|2885",
            "XXXCM|1|8|A|A-EQ",
            "NSECM|abc|8|A|A-EQ",
            "",
            "BSECM|500325|8|RELIANCE|",
            "MCXFO|234567|4|GOLD|GOLD24DECFUT|FUTCOM",
        ]
    )
    rows = list(parse_master(text))
    errors = {row[0]: row[1] for row in rows if isinstance(row, tuple)}
    assert sorted(errors) == [2, 3, 4, 6]
    assert "columns" in errors[2] and "segment" in errors[3] and "instrument id" in errors[4]
    assert [r.token for r in rows if isinstance(r, MasterRow)] == ["1_2885", "51_234567"]


def test_the_master_downloaded_from_the_server_maps_our_instruments(world, xts):
    report = master_import("xts", XtsAdapter.master_rows("iifl"))
    assert report.error_count == 0 and report.mapped == 2 and report.unmatched == 1  # INFY is not in our master
    mapped = BrokerInstrument.objects.get(broker="xts", instrument=world.equity)
    assert (mapped.token, mapped.tradingsymbol, mapped.exchange) == ("1_2885", "RELIANCE-EQ", "NSECM")
    assert xts.last("master").body == {"exchangeSegmentList": ["NSECM", "NSEFO", "NSECD", "BSECM", "BSEFO", "MCXFO"]}


def test_a_short_master_is_refused_and_the_mapping_stands(world, xts):
    master_import("xts", XtsAdapter.master_rows("iifl"))
    xts.master_text = "NSECM|1594|8|INFY|INFY-EQ|EQ"
    with pytest.raises(MasterImportRefused):
        master_import("xts", XtsAdapter.master_rows("iifl"), min_rows=2)
    assert BrokerInstrument.objects.filter(broker="xts").count() == 2
