"""REST API v1 for the trader's reports (mounted at /api/v1/ in config/api.py): P&L with charges, the
tradebook and the tax P&L of an account. Each route reaches the account through
brokers.selectors.account_get_for_user ("view"); refused filters answer 422 with each field's code and
message in ``extra["fields"]``; an account the caller cannot see answers 404."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Query, Router

from brokers.errors import BrokerAccountNotFound
from brokers.selectors import account_get_for_user
from core.api_errors import errors
from orders.reports import periods
from orders.reports.charges import ChargeTotals
from orders.reports.pnl import Totals, pnl_report
from orders.reports.schemas import PnlOut, TaxOut, TradebookOut
from orders.reports.tax import CATEGORY_LABELS, tax_report
from orders.reports.tradebook import tradebook, tradebook_filters
from orders.schemas import MAX_ID

router = Router(tags=["reports"])
# Each route declares 400 besides 422: a query holding a NUL byte is refused before any view
# (core.request_guard, ``nul_byte``), and these routes take free-text query parameters.
TRADEBOOK_LIMIT = 1000


def _account(request: HttpRequest, account_id: int):
    if not 0 < account_id <= MAX_ID:
        raise BrokerAccountNotFound(f"Broker account {account_id} was not found.")
    return account_get_for_user(user=request.user, account_id=account_id, access="view")


def _charges(charges: ChargeTotals) -> dict:
    return {name: getattr(charges, name) for name in ("brokerage", "stt", "exchange", "sebi", "stamp", "gst")} | {
        "total": charges.total
    }


def _totals(totals: Totals) -> dict:
    return {
        "trades": totals.trades,
        "realised": totals.realised,
        "unrealised": totals.unrealised,
        "gross": totals.gross,
        "charges": _charges(totals.charges),
        "net": totals.net,
    }


@router.get(
    "/accounts/{account_id}/pnl",
    response={200: PnlOut, **errors(400, 422)},
    summary="P&L per symbol, segment and day, with charges",
)
def pnl(
    request: HttpRequest,
    account_id: int,
    date_from: str = Query("", alias="from", description="First IST day, YYYY-MM-DD (default today)"),
    date_to: str = Query("", alias="to", description="Last IST day, YYYY-MM-DD (default today); at most 366 days"),
):
    account = _account(request, account_id)
    report = pnl_report(account=account, period=periods.date_range(date_from, date_to))
    return {
        "date_from": report.period.date_from,
        "date_to": report.period.date_to,
        "symbols": [
            {
                "instrument_id": row.instrument.id,
                "exchange": row.instrument.exchange,
                "tradingsymbol": row.instrument.tradingsymbol,
                "product": row.product,
                "segment": row.segment,
                "buy_quantity": row.buy_quantity,
                "buy_value": row.buy_value,
                "sell_quantity": row.sell_quantity,
                "sell_value": row.sell_value,
                "realised": row.realised,
                "open_quantity": row.open_quantity,
                "average_price": row.average_price,
                "ltp": row.ltp,
                "unrealised": row.unrealised,
                "charges": _charges(row.charges),
                "net": row.net,
            }
            for row in report.symbols
        ],
        "days": [{"day": day, **_totals(totals)} for day, totals in report.days],
        "segments": [{"segment": name, **_totals(totals)} for name, _, totals in report.segments],
        "totals": _totals(report.totals),
    }


@router.get(
    "/accounts/{account_id}/tradebook",
    response={200: TradebookOut, **errors(400, 422)},
    summary="Trades over IST days, filtered (newest first, at most 1000)",
)
def trades(
    request: HttpRequest,
    account_id: int,
    date_from: str = Query("", alias="from", description="First IST day, YYYY-MM-DD (default today)"),
    date_to: str = Query("", alias="to", description="Last IST day, YYYY-MM-DD (default today)"),
    symbol: str = Query("", description="Part of the trading symbol"),
    segment: str = Query("", description="equity, futures or options"),
    side: str = Query("", description="BUY or SELL"),
    product: str = Query("", description="CNC, MIS or NRML"),
):
    account = _account(request, account_id)
    found = tradebook(account=account, filters=tradebook_filters(date_from, date_to, symbol, segment, side, product))
    rows = list(found[:TRADEBOOK_LIMIT])
    return {
        "count": found.count() if len(rows) == TRADEBOOK_LIMIT else len(rows),
        "trades": [
            {
                "id": t.pk,
                "executed_at": t.executed_at,
                "exchange": t.instrument.exchange,
                "tradingsymbol": t.instrument.tradingsymbol,
                "side": t.side,
                "quantity": t.quantity,
                "price": t.price,
                "value": t.value,  # type: ignore[attr-defined]  # annotated by the selector
                "product": t.product,
                "order_id": t.order_id,
                "broker_trade_id": t.broker_trade_id,
            }
            for t in rows
        ],
    }


@router.get(
    "/accounts/{account_id}/tax-pnl",
    response={200: TaxOut, **errors(400, 422)},
    summary="Tax P&L of a financial year: intraday, short and long-term gains, F&O",
)
def tax_pnl(
    request: HttpRequest,
    account_id: int,
    fy: str = Query("", description="Financial year, 2025 or 2025-26 for April 2025 to March 2026 (default current)"),
):
    account = _account(request, account_id)
    report = tax_report(account=account, year=periods.financial_year(fy))
    return {
        "financial_year": report.year.label,
        "first_day": report.year.first_day,
        "last_day": report.year.last_day,
        "categories": [
            {
                "category": name,
                "label": label,
                "lines": report.categories[name].lines,
                "buy_value": report.categories[name].buy_value,
                "sell_value": report.categories[name].sell_value,
                "pnl": report.categories[name].pnl,
                "turnover": report.categories[name].turnover,
            }
            for name, label in CATEGORY_LABELS.items()
        ],
        "charges": {name: _charges(charges) for name, charges in report.charges.items()},
        "speculative_net": report.speculative_net,
        "fno_net": report.fno_net,
        "lines": [
            {
                "category": line.category,
                "exchange": line.instrument.exchange,
                "tradingsymbol": line.instrument.tradingsymbol,
                "bought_on": line.bought_on,
                "sold_on": line.sold_on,
                "quantity": line.quantity,
                "buy_value": line.buy_value,
                "sell_value": line.sell_value,
                "pnl": line.pnl,
            }
            for line in report.lines
        ],
    }
