"""Closing positions with market orders: one position (``square_off``, sliced at the freeze
quantity), every position of an account (``square_off_all``), and every MIS order and position at
15:15 IST (``square_off_intraday``, from Celery beat)."""

from __future__ import annotations

import logging
import time

from audit.services import audit_record
from orders.errors import PositionNotFound
from orders.models import Order, OrderType, Position, Product, Side, Source
from orders.services.amendments import cancel_all
from orders.services.requests import OrderRequest, audit_actor
from orders.services.slices import place_sliced_order
from orders.states import WORKING
from rms.errors import RiskRejected

logger = logging.getLogger(__name__)


def square_off(
    *,
    actor,
    account,
    instrument_id: int,
    product: str,
    source: str = Source.SYSTEM,
    ip: str | None = None,
    idempotency_key: str | None = None,
) -> list[Order]:
    """Close a position with market orders (sliced at the freeze quantity); return them.

    Raises PositionNotFound when there is nothing to close. Exits pass the pre-trade check even under
    a kill switch or a daily-loss breach (they reduce exposure), but still obey the order-rate limit.
    """
    position = Position.objects.filter(account_id=account.pk, instrument_id=instrument_id, product=product).first()
    if position is None or position.net_quantity == 0:
        raise PositionNotFound(
            "There is no open position to close.", extra={"instrument_id": instrument_id, "product": product}
        )
    request = OrderRequest(
        instrument_id=instrument_id,
        side=Side.SELL if position.net_quantity > 0 else Side.BUY,
        quantity=abs(position.net_quantity),
        order_type=OrderType.MARKET,
        product=product,
        tag="square-off",
    )
    orders = place_sliced_order(
        actor=actor, account=account, request=request, source=source, idempotency_key=idempotency_key, ip=ip
    )
    for order in orders:
        audit_record(
            actor=audit_actor(actor),
            action="position.squared_off",
            target=order,
            payload={
                "account_id": account.pk,
                "instrument_id": instrument_id,
                "product": product,
                "quantity": order.quantity,
            },
            ip=ip,
        )
    return orders


def square_off_all(*, actor, account, product: str | None = None, ip: str | None = None) -> list[Order]:
    """Square off every open position of the account (optionally one product); return the orders.

    A square-off refused by the order-rate limit is retried after the window passes (three times).
    """
    positions = Position.objects.filter(account_id=account.pk).exclude(net_quantity=0).order_by("pk")
    if product:
        positions = positions.filter(product=product)
    placed: list[Order] = []
    for position in positions:
        for attempt in range(4):
            try:
                placed += square_off(
                    actor=actor, account=account, instrument_id=position.instrument_id, product=position.product, ip=ip
                )
                break
            except RiskRejected as error:
                if error.rule != "orders_per_second" or attempt == 3:
                    logger.error("square-off of position %s refused: %s", position.pk, error.message)
                    break
                time.sleep(1.0)
            except PositionNotFound:
                break
    return placed


def square_off_intraday() -> dict:
    """Cancel working MIS orders and square off every MIS position (run at 15:15 IST); return counts."""
    from brokers.models import BrokerAccount

    account_ids = set(
        Position.objects.filter(product=Product.MIS).exclude(net_quantity=0).values_list("account_id", flat=True)
    )
    account_ids |= set(
        Order.objects.filter(product=Product.MIS, status__in=WORKING).values_list("account_id", flat=True)
    )
    cancelled = squared = 0
    for account in BrokerAccount.objects.filter(pk__in=account_ids).order_by("pk"):
        cancelled += len(cancel_all(actor=None, account=account, product=Product.MIS))
        squared += len(square_off_all(actor=None, account=account, product=Product.MIS))
    return {"accounts": len(account_ids), "cancelled": cancelled, "squared_off": squared}
