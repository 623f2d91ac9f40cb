"""What the pre-trade check reads, under the account lock: the account's ``RiskState`` for one order
and the order's group (its position and working orders) as read, for the margin refresh that follows."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Q

from infra.prepared import Prepared
from marketdata.quotes import get_quotes
from orders.locks import today_ist
from orders.margin import group_margin, working_orders
from orders.models import Order, Position, Product, Side
from orders.services.requests import OrderRequest, actor_id, stop_price
from orders.states import LIVE
from rms.services import RiskState, active_kill_switch


@dataclass(frozen=True, slots=True)
class Group:
    """The (account, instrument, product) group an order belongs to, as read under the account lock."""

    position: Position | None
    orders: list[tuple[str, int, Decimal]]  # working orders: (side, remaining, margin price)


# The reads every order placed makes, compiled once (infra/prepared.py).
_POSITIONS_FOR_RISK = Prepared(
    lambda p: Position.objects.filter(account_id=p.account).filter(
        ~Q(net_quantity=0) | Q(instrument_id=p.instrument, product=p.product)
    ),
    account=int,
    instrument=int,
    product=str,
)
_OPEN_ORDERS = Prepared(
    lambda p: (
        Order.objects.filter(account_id=p.account, status__in=LIVE)
        .order_by()
        .values("account_id")
        .annotate(n=Count("pk"))
    ),
    values=("n",),
    flat=True,
    account=int,
)


def _open_orders(account_id: int, exclude_order: Order | None) -> int:
    """Return how many of the account's orders are working, ``exclude_order`` (being modified) aside."""
    count = _OPEN_ORDERS.first(account=account_id) or 0
    if exclude_order is not None and exclude_order.status in LIVE:
        count -= 1
    return count


def _mtm(positions: list[Position], ltps: dict[int, Decimal | None]) -> Decimal:
    """Return the unrealised P&L of ``positions`` at the last prices: ``ltps`` holds those already read
    (the order's own instrument), the others are read now."""
    positions = [p for p in positions if p.net_quantity]
    missing = {p.instrument_id for p in positions} - ltps.keys()
    if missing:
        ltps = {**ltps, **{i: q.ltp for i, q in get_quotes(list(missing)).items()}}
    return sum((p.unrealised_pnl(ltps.get(p.instrument_id)) for p in positions), Decimal(0))


def risk_state(
    *, funds, account, actor, instrument, request: OrderRequest, adapter, ltp, exclude_order=None
) -> tuple[RiskState, Group]:
    """Read what the pre-trade rules need, under the account lock (so the numbers cannot move); return
    it with the order's group as read (position and working orders, for the margin refresh)."""
    # One read for the open positions (for MTM) and the order's own group, open or flat.
    positions = _POSITIONS_FOR_RISK.all(account=account.pk, instrument=instrument.pk, product=str(request.product))
    position = next((p for p in positions if p.instrument_id == instrument.pk and p.product == request.product), None)
    net = position.net_quantity if position else 0
    orders = working_orders(
        account_id=account.pk,
        instrument_id=instrument.pk,
        product=request.product,
        exclude_pk=exclude_order.pk if exclude_order is not None else None,
    )
    # An exit only if it and the exits already working together cannot take the position past flat.
    exiting = sum(remaining for side, remaining, _ in orders if side == request.side)
    reduces = bool(net) and (request.side == Side.SELL) == (net > 0) and request.quantity + exiting <= abs(net)
    price = request.price or stop_price(request) or ltp or Decimal(0)
    proposed = group_margin(
        adapter=adapter,
        instrument=instrument,
        product=request.product,
        net=net,
        average=position.average_price if position else Decimal(0),
        orders=[*orders, (request.side, request.quantity, price)],
    )
    current = position.margin_blocked if position else Decimal(0)
    selling = sum(r for side, r, _ in orders if side == Side.SELL) if request.product == Product.CNC else 0
    kill = active_kill_switch(organisation_id=account.organisation_id, account_id=account.pk, user_id=actor_id(actor))
    state = RiskState(
        today=today_ist(),
        kill_switch=None if reduces else kill,  # a kill switch halts new exposure, never an exit
        ltp=ltp,
        open_orders=_open_orders(account.pk, exclude_order),
        realised_today=funds.realised_today,
        mtm=_mtm(positions, {instrument.pk: ltp}),
        available_margin=funds.available,
        required_margin=proposed - current,
        reduces_position=reduces,
        delivery_held=net if request.product == Product.CNC else 0,
        delivery_selling=selling,
    )
    return state, Group(position, orders)
