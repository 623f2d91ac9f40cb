"""Placing an order above the freeze quantity: exchange-legal slices (each at most the freeze quantity
rounded down to whole lots) placed as child orders sharing a slice group, each through ``place_order``
and so through the pre-trade check, the order-rate limit included."""

from __future__ import annotations

import uuid
from dataclasses import replace

from marketdata.models import Instrument
from orders.errors import OrderInvalid
from orders.locks import today_ist
from orders.models import Order
from orders.services.placement import place_order
from orders.services.requests import OrderRequest, check_choices, check_numbers, order_intent, reject_input
from rms.errors import RiskRejected
from rms.services import validate_order_input

MAX_SLICES = 50  # children of one sliced order, as many as a basket's legs


def slice_quantities(quantity: int, *, lot_size: int, freeze_quantity: int | None) -> list[int]:
    """Split ``quantity`` into exchange-legal parts: each at most the freeze quantity rounded down to a lot."""
    if not freeze_quantity or quantity <= freeze_quantity:
        return [quantity]
    largest = (freeze_quantity // lot_size) * lot_size
    if largest <= 0:
        raise OrderInvalid("The freeze quantity is below one lot.", code="freeze_below_lot")
    count = -(-quantity // largest)
    if count > MAX_SLICES:
        raise OrderInvalid(
            f"The order would need {count} slices of {largest}; at most {MAX_SLICES} are placed at once.",
            code="too_many_slices",
            extra={"slices": count, "max": MAX_SLICES, "field": "quantity"},
        )
    parts = [largest] * (quantity // largest)
    if quantity % largest:
        parts.append(quantity % largest)
    return parts


def place_sliced_order(
    *,
    actor,
    account,
    request: OrderRequest,
    source: str,
    idempotency_key: str | None = None,
    ip: str | None = None,
) -> list[Order]:
    """Place an order above the freeze quantity as child orders sharing a slice group; return them.

    The whole request is validated first (lot, tick, price); each child then passes the pre-trade
    check, including the orders-per-second limit. Children placed before a rejection stay placed.
    """
    instrument = Instrument.objects.filter(pk=request.instrument_id).first()
    if instrument is None:
        return [
            place_order(
                actor=actor, account=account, request=request, source=source, idempotency_key=idempotency_key, ip=ip
            )
        ]
    try:
        check_choices(request)
        check_numbers(request)
        validate_order_input(
            order_intent(account=account, actor=actor, instrument=instrument, request=request), today_ist()
        )
        parts = slice_quantities(
            request.quantity, lot_size=instrument.lot_size, freeze_quantity=instrument.freeze_quantity
        )
    except (RiskRejected, OrderInvalid) as error:
        reject_input(actor=actor, account=account, request=request, error=error, ip=ip)
        raise
    if len(parts) == 1:
        return [
            place_order(
                actor=actor, account=account, request=request, source=source, idempotency_key=idempotency_key, ip=ip
            )
        ]
    group = uuid.uuid4()
    return [
        place_order(
            actor=actor,
            account=account,
            request=replace(request, quantity=part),
            source=source,
            idempotency_key=f"{idempotency_key}:{i}" if idempotency_key else None,
            slice_group=group,
            ip=ip,
        )
        for i, part in enumerate(parts)
    ]
