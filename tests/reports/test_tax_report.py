"""The tax P&L (orders/reports/tax.py): FIFO lots for delivery, the 12-month line between short and long
term, same-day trades as intraday, F&O as business income, and the financial year's IST edges."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

import pytest

from orders.reports.periods import FinancialYear, financial_year_of
from orders.reports.tax import FNO, INTRADAY, LONG_TERM, SHORT_TERM, UNMATCHED, held_long_term, tax_report
from tests.reports.recorded import record
from tests.trading_world import _fresh_trading_state, world  # noqa: F401

FY_2024 = FinancialYear(2024)  # 1 April 2024 to 31 March 2025


def _lines(report):
    return [
        (
            line.category,
            line.bought_on and line.bought_on.isoformat(),
            line.sold_on.isoformat(),
            line.quantity,
            line.pnl,
        )
        for line in report.lines
    ]


@pytest.mark.django_db
def test_a_delivery_sale_takes_the_oldest_lots_first_and_splits_long_and_short_term(world):  # noqa: F811
    record(world.account, world.equity, "BUY", 10, 1500, "2024-01-10 10:00", product="CNC")
    record(world.account, world.equity, "BUY", 10, 1600, "2024-06-10 10:00", product="CNC")
    record(world.account, world.equity, "SELL", 15, 1800, "2025-01-15 10:00", product="CNC")
    report = tax_report(account=world.account, year=FY_2024)
    assert _lines(report) == [
        (LONG_TERM, "2024-01-10", "2025-01-15", 10, D("3000")),  # 10 x (1800 - 1500), held 12 months and 5 days
        (SHORT_TERM, "2024-06-10", "2025-01-15", 5, D("1000")),  # 5 x (1800 - 1600), held 7 months
    ]
    assert (report.categories[LONG_TERM].pnl, report.categories[SHORT_TERM].pnl) == (D("3000"), D("1000"))
    assert (report.categories[LONG_TERM].buy_value, report.categories[LONG_TERM].sell_value) == (
        D("15000"),
        D("18000"),
    )


def test_twelve_months_to_the_day_is_still_short_term_and_a_day_more_is_long_term():
    assert not held_long_term(date(2024, 4, 10), date(2025, 4, 10))
    assert held_long_term(date(2024, 4, 10), date(2025, 4, 11))
    assert not held_long_term(date(2024, 2, 29), date(2025, 2, 28))  # a leap day's anniversary
    assert held_long_term(date(2024, 2, 29), date(2025, 3, 1))


@pytest.mark.django_db
def test_a_same_day_buy_and_sell_is_intraday_even_on_a_delivery_product(world):  # noqa: F811
    record(world.account, world.equity, "BUY", 10, 100, "2024-05-06 09:30", product="CNC")
    record(world.account, world.equity, "SELL", 10, 105, "2024-05-06 14:30", product="CNC")
    record(world.account, world.equity, "SELL", 5, 110, "2024-05-07 10:00", product="MIS")
    record(world.account, world.equity, "BUY", 5, 108, "2024-05-07 11:00", product="MIS")  # a short, covered
    report = tax_report(account=world.account, year=FY_2024)
    assert _lines(report) == [
        (INTRADAY, "2024-05-06", "2024-05-06", 10, D("50")),
        (INTRADAY, "2024-05-07", "2024-05-07", 5, D("10")),
    ]
    # Charges: the CNC pair at delivery rates, the MIS pair at intraday rates; speculative net of the latter.
    assert report.categories[INTRADAY].pnl == D("60")
    assert report.speculative_net == D("60") - report.charges[INTRADAY].total


@pytest.mark.django_db
def test_futures_and_options_are_business_income_with_turnover_the_sum_of_absolute_results(world):  # noqa: F811
    record(world.account, world.future, "BUY", 75, 22000, "2024-05-06 10:00", product="NRML")
    record(world.account, world.future, "SELL", 75, 22100, "2024-05-07 10:00", product="NRML")  # +7,500
    record(world.account, world.future, "SELL", 75, 22200, "2024-06-03 10:00", product="NRML")
    record(world.account, world.future, "BUY", 75, 22300, "2024-06-04 10:00", product="NRML")  # -7,500
    report = tax_report(account=world.account, year=FY_2024)
    assert [(line.category, line.sold_on.isoformat(), line.pnl) for line in report.lines] == [
        (FNO, "2024-05-07", D("7500")),
        (FNO, "2024-06-04", D("-7500")),
    ]
    fno = report.categories[FNO]
    assert (fno.pnl, fno.turnover, fno.lines) == (D("0"), D("15000"), 2)
    assert report.fno_net == -report.charges[FNO].total


@pytest.mark.django_db
def test_the_year_runs_from_1_april_to_31_march_in_ist(world):  # noqa: F811
    record(world.account, world.equity, "BUY", 10, 100, "2024-01-02 10:00", product="CNC")
    record(world.account, world.equity, "SELL", 1, 110, "2024-03-31 23:59", product="CNC")  # FY 2023-24
    record(world.account, world.equity, "SELL", 2, 120, "2024-04-01 00:00", product="CNC")  # FY 2024-25 starts
    record(world.account, world.equity, "SELL", 3, 130, "2025-03-31 23:59", product="CNC")  # its last minute
    record(world.account, world.equity, "SELL", 4, 140, "2025-04-01 00:00", product="CNC")  # FY 2025-26
    assert [(line.quantity, line.pnl) for line in tax_report(account=world.account, year=FY_2024).lines] == [
        (2, D("40")),
        (3, D("90")),
    ]
    assert [line.quantity for line in tax_report(account=world.account, year=FinancialYear(2023)).lines] == [1]
    assert [line.quantity for line in tax_report(account=world.account, year=FinancialYear(2025)).lines] == [4]
    assert financial_year_of(date(2025, 3, 31)).label == "2024-25"
    assert financial_year_of(date(2025, 4, 1)).label == "2025-26"


@pytest.mark.django_db
def test_a_sale_of_shares_bought_before_the_records_is_listed_unmatched_with_no_cost(world):  # noqa: F811
    record(world.account, world.equity, "BUY", 3, 100, "2024-05-06 10:00", product="CNC")
    record(world.account, world.equity, "SELL", 5, 120, "2024-07-01 10:00", product="CNC")
    report = tax_report(account=world.account, year=FY_2024)
    assert _lines(report) == [
        (SHORT_TERM, "2024-05-06", "2024-07-01", 3, D("60")),
        (UNMATCHED, None, "2024-07-01", 2, None),
    ]
    assert report.categories[UNMATCHED].sell_value == D("240")
