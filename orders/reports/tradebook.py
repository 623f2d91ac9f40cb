"""The tradebook: an account's trades over IST days, filtered by symbol, segment, side and product."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import DecimalField, ExpressionWrapper, F, Q, QuerySet

from orders.models import Trade
from orders.reports import periods
from orders.reports.periods import DateRange

SEGMENTS = ("equity", "futures", "options")
SIDES = ("BUY", "SELL")
PRODUCTS = ("CNC", "MIS", "NRML")
SEGMENT_TYPES = {
    "futures": Q(instrument__instrument_type="FUT"),
    "options": Q(instrument__instrument_type__in=("CE", "PE")),
}


@dataclass(frozen=True, slots=True)
class TradebookFilters:
    period: DateRange
    symbol: str = ""  # part of the trading symbol, upper case
    segment: str = ""  # equity, futures, options
    side: str = ""
    product: str = ""

    def as_query(self) -> dict[str, str]:
        """The filters as query parameters (the export link, the pages)."""
        values = {
            "from": self.period.date_from.isoformat(),
            "to": self.period.date_to.isoformat(),
            "symbol": self.symbol,
            "segment": self.segment,
            "side": self.side,
            "product": self.product,
        }
        return {name: value for name, value in values.items() if value}


def tradebook(*, account, filters: TradebookFilters) -> QuerySet[Trade]:
    """Return ``account``'s trades matching ``filters``, newest first, with the instrument and order
    joined and ``value`` (quantity x price) annotated. Reads trade_account_executed."""
    start, end = filters.period.bounds()
    trades = Trade.objects.filter(account_id=account.pk, executed_at__gte=start, executed_at__lt=end)
    if filters.symbol:
        trades = trades.filter(instrument__tradingsymbol__contains=filters.symbol)
    if filters.segment == "equity":
        trades = trades.exclude(SEGMENT_TYPES["futures"] | SEGMENT_TYPES["options"])
    elif filters.segment:
        trades = trades.filter(SEGMENT_TYPES[filters.segment])
    if filters.side:
        trades = trades.filter(side=filters.side)
    if filters.product:
        trades = trades.filter(product=filters.product)
    value = ExpressionWrapper(F("quantity") * F("price"), output_field=DecimalField(max_digits=24, decimal_places=4))
    return trades.select_related("instrument", "order").annotate(value=value).order_by("-executed_at", "-id")


def tradebook_filters(
    date_from: str | None,
    date_to: str | None,
    symbol: str | None,
    segment: str | None,
    side: str | None,
    product: str | None,
) -> TradebookFilters:
    """The tradebook's filters as typed. Raises ReportInvalid naming each refused field."""
    return TradebookFilters(
        period=periods.date_range(date_from, date_to),
        symbol=periods.text_filter(symbol, "symbol", "Symbol"),
        segment=periods.choice_filter(segment, "segment", "Segment", SEGMENTS),
        side=periods.choice_filter((side or "").upper(), "side", "Side", SIDES),
        product=periods.choice_filter((product or "").upper(), "product", "Product", PRODUCTS),
    )
