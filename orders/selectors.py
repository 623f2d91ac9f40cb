"""Order reads: each takes an account already authorised through brokers.selectors.account_get_for_user."""

from __future__ import annotations

from datetime import datetime
from datetime import time as dt_time
from decimal import Decimal

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.text import Truncator

from core.money import format_price
from marketdata.quotes import get_quotes
from orders.locks import today_ist
from orders.models import BROKER_UNANSWERED, FILLS_TO_FETCH, Funds, Order, OrderEvent, Position, Status, Trade
from orders.states import WORKING
from rms.models import KillScope
from rms.services import MARKET_TYPES, STOP_TYPES


def order_list(*, account, status: list[str] | None = None) -> QuerySet[Order]:
    orders = Order.objects.filter(account=account).select_related("instrument")
    return orders.filter(status__in=status) if status else orders


def order_row(order: Order) -> dict:
    """Return what the order book shows of ``order``, formatted (``templates/orders/order_row.html``).

    The book shows up to 200 rows and each value costs the template engine several lookups, filters,
    localisation and escaping; formatting here once keeps the row template to plain substitutions.
    Prices show the instrument's tick precision with Indian grouping; the modify form's inputs hold
    the same precision ungrouped (core.money).
    """
    instrument = order.instrument
    return _row(
        (
            order.pk,
            order.status,
            order.created_at,
            order.side,
            order.order_type,
            order.product,
            order.validity,
            order.quantity,
            order.filled_quantity,
            order.price,
            order.trigger_price,
            order.average_price,
            order.message,
            instrument.exchange,
            instrument.tradingsymbol,
            instrument.lot_size,
            instrument.tick_size,
        )
    )


# The columns a row shows, in the order ``_row`` reads them.
ORDER_ROW_FIELDS = (
    "id",
    "status",
    "created_at",
    "side",
    "order_type",
    "product",
    "validity",
    "quantity",
    "filled_quantity",
    "price",
    "trigger_price",
    "average_price",
    "message",
    "instrument__exchange",
    "instrument__tradingsymbol",
    "instrument__lot_size",
    "instrument__tick_size",
)
_STATUS_LABELS = dict(Status.choices)


def _row(values: tuple) -> dict:
    pk, status, created, side, order_type, product, validity, quantity, filled = values[:9]
    price, trigger_price, average, message, exchange, tradingsymbol, lot_size, tick_size = values[9:]
    limit = format_price(price, tick_size)  # "" for none
    trigger = format_price(trigger_price, tick_size)
    return {
        "id": pk,
        "status_class": status.lower(),
        "time": timezone.localtime(created).strftime("%H:%M:%S") if created else "",
        "symbol": f"{exchange}:{tradingsymbol}",
        "side": side,
        "side_class": side.lower(),
        "type": f"{order_type} · {product} · {validity}",
        "quantity": f"{filled}/{quantity}",
        "price": f"{limit or 'MKT'} (trg {trigger})" if trigger else limit or "MKT",
        "average_price": format_price(average, tick_size),
        "message": message,
        "status": _STATUS_LABELS.get(status, status),
        "note": Truncator(message).chars(60) if message and status == Status.REJECTED else "",
        "working": status in WORKING,
        # The modify form: lots as {% widthratio quantity lot_size 1 %} showed them, and the inputs it offers.
        "lots": str(round(quantity / lot_size)) if lot_size else "0",
        # The inputs hold the prices ungrouped (what the form posts back), at the same precision.
        "price_input": limit.replace(",", "") if order_type not in MARKET_TYPES else None,
        "trigger_input": trigger.replace(",", "") if order_type in STOP_TYPES else None,
    }


def order_book(*, account, limit: int) -> list[dict]:
    """Return the account's latest ``limit`` orders, newest first, as order book rows (``order_row``):
    read as plain tuples, since building 200 model instances cost as much as formatting them."""
    orders = Order.objects.filter(account=account).order_by("-created_at")[:limit]
    return [_row(values) for values in orders.values_list(*ORDER_ROW_FIELDS)]


def trade_list(*, account) -> QuerySet[Trade]:
    return Trade.objects.filter(account=account).select_related("instrument", "order")


def _start_of_today():
    """Return midnight IST today (TIME_ZONE is Asia/Kolkata), UTC-aware."""
    return timezone.make_aware(datetime.combine(today_ist(), dt_time.min))


def position_list(*, account) -> list[dict]:
    """Return positions with live MTM from the last quotes (dicts ready for the schema or template).

    A row that is flat, has never realised anything and had no trade today is left out: an order
    that never filled leaves one behind (its margin was blocked on it), and it is no position."""
    traded_today = Trade.objects.filter(
        account_id=OuterRef("account_id"),
        instrument_id=OuterRef("instrument_id"),
        product=OuterRef("product"),
        executed_at__gte=_start_of_today(),
    )
    positions = list(
        Position.objects.filter(account=account)
        .filter(~Q(net_quantity=0) | ~Q(realised_pnl=0) | Exists(traded_today))
        .select_related("instrument")
        .order_by("pk")
    )
    quotes = get_quotes([p.instrument_id for p in positions])
    rows = []
    for p in positions:
        ltp = quotes[p.instrument_id].ltp if p.instrument_id in quotes else None
        rows.append(
            {
                "id": p.pk,
                "instrument_id": p.instrument_id,
                "product": p.product,
                "net_quantity": p.net_quantity,
                "average_price": p.average_price,
                "realised_pnl": p.realised_pnl,
                "unrealised_pnl": p.unrealised_pnl(ltp),
                "ltp": ltp,
                "buy_quantity": p.buy_quantity,
                "sell_quantity": p.sell_quantity,
                "margin_blocked": p.margin_blocked,
                "position": p,
            }
        )
    return rows


def position_day_pnl(*, account, positions: list[dict]) -> dict:
    """Return the account's P&L for the IST day: ``{"realised", "unrealised", "total"}`` (Decimals).

    Realised is what closed today (``Funds.realised_today``, zero when the ledger's day is an earlier
    one: it resets on the account's first order of the day); unrealised is the MTM of ``positions``
    (``position_list``) at the last quotes. The total is what the daily loss limit measures."""
    funds = Funds.objects.filter(account=account).only("realised_today", "trading_day").first()
    realised = funds.realised_today if funds is not None and funds.trading_day == today_ist() else Decimal(0)
    unrealised = sum((row["unrealised_pnl"] for row in positions), Decimal(0))
    return {"realised": realised, "unrealised": unrealised, "total": realised + unrealised}


def funds_get(*, account) -> dict:
    funds = Funds.objects.filter(account=account).first()
    if funds is None:
        zero = Decimal(0)
        return {
            "account_id": account.pk,
            "opening_balance": zero,
            "realised_pnl": zero,
            "realised_today": zero,
            "margin_blocked": zero,
            "available": zero,
        }
    return {
        "account_id": account.pk,
        "opening_balance": funds.opening_balance,
        "realised_pnl": funds.realised_pnl,
        "realised_today": funds.realised_today,
        "margin_blocked": funds.margin_blocked,
        "available": funds.available,
    }


def orders_to_reconcile() -> QuerySet[Order]:
    """Return the orders reconciliation must settle from their broker's order book: those UNKNOWN
    (a place the broker never answered) and the working ones whose last unanswered modify or cancel
    (event ``broker_unanswered``), or last fills reported without their trades (``fills_to_fetch``),
    came after their last reconciliation. Reads the partial index of
    live orders, then each one's newest events of those two kinds."""

    def newest(*kinds: str) -> Subquery:
        events = OrderEvent.objects.filter(order_id=OuterRef("pk"), kind__in=kinds).order_by("-pk")
        return Subquery(events.values("pk")[:1])

    unanswered = (
        Order.objects.filter(status__in=WORKING)
        .annotate(unanswered=newest(BROKER_UNANSWERED, FILLS_TO_FETCH), reconciled=newest("reconcile"))
        .filter(unanswered__isnull=False)
        .filter(Q(reconciled__isnull=True) | Q(unanswered__gt=F("reconciled")))
    )
    return Order.objects.filter(Q(status=Status.UNKNOWN) | Q(pk__in=unanswered.values("pk")))


def account_daily_loss(account_id: int) -> Decimal:
    """Return today's loss of the account (positive = loss): -(realised today + MTM of open positions)."""
    funds = Funds.objects.filter(account_id=account_id).first()
    realised = funds.realised_today if funds else Decimal(0)
    positions = list(Position.objects.filter(account_id=account_id).exclude(net_quantity=0))
    quotes = get_quotes([p.instrument_id for p in positions])
    mtm = sum(
        (p.unrealised_pnl(quotes[p.instrument_id].ltp if p.instrument_id in quotes else None) for p in positions),
        Decimal(0),
    )
    return -(realised + mtm)


def daily_losses() -> dict[int, Decimal]:
    """Return {account id: loss today (``account_daily_loss``)} for every account with an open position
    or a realised loss today: what RMS's MTM monitor weighs against the daily loss limits (registered
    with ``rms.selectors.register_daily_losses`` by OrdersConfig.ready)."""
    candidates = set(Position.objects.exclude(net_quantity=0).values_list("account_id", flat=True))
    candidates |= set(Funds.objects.filter(realised_today__lt=0).values_list("account_id", flat=True))
    return {account_id: account_daily_loss(account_id) for account_id in candidates}


def kill_switch_impact(*, scope: str, target_id: int | None) -> dict:
    """Return what engaging a switch now would do (orders.services.kill_switch_engage):
    ``{"open_orders": n, "positions": n}``, the orders it would cancel (pending or working, as
    ``cancel_all`` does) and the open positions it would square off at market. A user's switch
    cancels that user's orders on every account and squares off nothing: positions belong to accounts.
    Two counting queries."""
    orders = Order.objects.filter(status__in=[Status.PENDING, *WORKING])
    positions = Position.objects.exclude(net_quantity=0)
    if scope == KillScope.USER:
        return {"open_orders": orders.filter(placed_by_id=target_id).count(), "positions": 0}
    if scope == KillScope.ORGANISATION:
        if target_id is None:  # no organisation named: nothing in it
            orders, positions = orders.none(), positions.none()
        else:
            orders = orders.filter(account__organisation_id=target_id)
            positions = positions.filter(account__organisation_id=target_id)
    elif scope == KillScope.ACCOUNT:
        orders = orders.filter(account_id=target_id)
        positions = positions.filter(account_id=target_id)
    return {"open_orders": orders.count(), "positions": positions.count()}
