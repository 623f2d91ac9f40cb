"""GTT (good-till-triggered) orders: place, modify, delete and list an account's GTTs at its broker.

A GTT rests at the broker, not in our order book: when its trigger is hit the broker places the
leg's LIMIT order, which reaches us as any order the broker reports. So these acts write no order
rows and block no margin; each checks that the actor may trade the account (the same gate as orders,
``brokers.selectors.account_get_for_user``), that the account's broker family has GTT
(``capabilities.gtt``, else BrokerRejected ``broker_cannot_gtt``) and that the request's numbers
make sense against the instrument and its last price (GttInvalid, 422, naming the rule and the
field), then calls the broker and audits the act (``gtt.placed``, ``gtt.modified``, ``gtt.deleted``).
A broker's error passes through as it is. Like placing, none may run inside an open transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import audit_record
from brokers.adapters.base import GTT_OCO, GTT_SINGLE, BrokerNotSent, Gtt, GttLeg, GttOrder, no_gtt
from brokers.adapters.registry import adapter_for, family
from brokers.selectors import Access, account_get_for_user
from marketdata.models import Instrument
from marketdata.quotes import get_quote
from orders.errors import GttInProgress, GttInvalid
from orders.models import GttPlacement, Side
from orders.services.requests import audit_actor
from rms.services import MAX_ORDER_QUANTITY, MAX_PRICE

# A GTT lives up to a year at the broker: intraday products (MIS) end the day, so they are not offered.
GTT_PRODUCTS = frozenset({"CNC", "NRML"})
DERIVATIVES = frozenset({"FUT", "CE", "PE"})
MAX_TRIGGER_ID_LENGTH = 40


@dataclass(frozen=True, slots=True)
class GttRequest:
    """What a caller asks for. ``kind`` "single": one trigger (``trigger_price``) placing a LIMIT
    order at ``price``. ``kind`` "oco": a stop-loss and a target, one cancelling the other, each
    placing a LIMIT order of ``side`` at its price; a SELL exits a long (the stop below the last
    price, the target above it), a BUY exits a short (the other way round)."""

    instrument_id: int
    kind: str
    side: str
    quantity: int
    product: str
    trigger_price: Decimal | None = None
    price: Decimal | None = None
    stoploss_trigger: Decimal | None = None
    stoploss_price: Decimal | None = None
    target_trigger: Decimal | None = None
    target_price: Decimal | None = None


def gtt_place(
    *, actor, account_id: int, request: GttRequest, idempotency_key: str | None = None, ip: str | None = None
) -> str:
    """Place a GTT on ``account_id`` for ``actor``; return the broker's trigger id.

    A repeated ``idempotency_key`` on the account (the GTT form's one-time token: a double submit)
    returns the first GTT's trigger id and sends nothing. Raises BrokerAccountNotFound /
    BrokerAccountForbidden (the gate), BrokerRejected ``broker_cannot_gtt``, GttInvalid (bad input,
    nothing sent), GttInProgress (409: the key's first request is still at the broker, or its answer
    was lost) and the broker's errors as they are. A refusal of the input or by the broker is
    audited as ``gtt.rejected`` naming the rule."""
    account = _account(actor, account_id, "trade")
    if idempotency_key:
        placed = GttPlacement.objects.filter(account=account, idempotency_key=idempotency_key[:100]).first()
        if placed is not None and placed.trigger_id:
            return placed.trigger_id  # a repeat: nothing is checked or sent again
    try:
        order = gtt_order(request)
    except GttInvalid as error:
        _reject(actor=actor, account=account, request=request, error=error, ip=ip)
        raise
    claim = _claim(account, idempotency_key) if idempotency_key else None
    if isinstance(claim, str):
        return claim  # placed the first time
    try:
        trigger_id = adapter_for(account).gtt_place(order)
    except BrokerNotSent as error:
        if claim is not None:
            claim.delete()  # nothing was placed: the same form may be sent again once corrected
        _reject(actor=actor, account=account, request=request, error=error, ip=ip)
        raise
    if claim is not None:
        GttPlacement.objects.filter(pk=claim.pk).update(trigger_id=trigger_id[:40])
    audit_record(
        actor=audit_actor(actor),
        action="gtt.placed",
        target=account,
        payload=_payload(account, trigger_id, order),
        ip=ip,
    )
    return trigger_id


def _claim(account, idempotency_key: str) -> GttPlacement | str:
    """Claim ``idempotency_key`` for a new GTT on ``account``; return the claim, or the trigger id of
    the GTT placed with it before. Raises GttInProgress when its first request has no answer yet."""
    key = idempotency_key[:100]
    try:
        with transaction.atomic():
            return GttPlacement.objects.create(account=account, idempotency_key=key)
    except IntegrityError:
        first = GttPlacement.objects.filter(account=account, idempotency_key=key).first()
        if first is not None and first.trigger_id:
            return first.trigger_id
        raise GttInProgress(
            "This GTT was already sent and the broker's answer has not come: look in the GTT book before "
            "placing it again.",
            extra={"idempotency_key": key},
        ) from None


def _reject(*, actor, account, request: GttRequest, error, ip: str | None) -> None:
    """Audit a refused GTT (bad input, or the broker's refusal): the rule and what was asked."""
    audit_record(
        actor=audit_actor(actor),
        action="gtt.rejected",
        target=account,
        payload={"rule": error.code, "message": error.message, **_request_payload(account, request)},
        ip=ip,
    )


def _request_payload(account, request: GttRequest) -> dict:
    """What a GTT request asked, as the audit trail can hold it (a refused odd value as its text)."""
    payload: dict[str, Any] = {"account_id": account.pk}
    for name in GttRequest.__dataclass_fields__:
        value = getattr(request, name)
        if isinstance(value, Decimal) and not value.is_finite():
            value = str(value)
        elif not (value is None or isinstance(value, int | Decimal)):
            value = str(value)[:40]
        payload[name] = value
    return payload


def gtt_modify(*, actor, account_id: int, trigger_id: str, request: GttRequest, ip: str | None = None) -> str:
    """Replace the terms of the GTT ``trigger_id`` with ``request``; return its trigger id. Raises as
    ``gtt_place`` does, and GttInvalid ``gtt_trigger_id_invalid`` for an id no broker could have."""
    account = _account(actor, account_id, "trade")
    trigger_id = _trigger_id(trigger_id)
    try:
        order = gtt_order(request)
        trigger_id = adapter_for(account).gtt_modify(trigger_id=trigger_id, order=order)
    except (GttInvalid, BrokerNotSent) as error:
        _reject(actor=actor, account=account, request=request, error=error, ip=ip)
        raise
    audit_record(
        actor=audit_actor(actor),
        action="gtt.modified",
        target=account,
        payload=_payload(account, trigger_id, order),
        ip=ip,
    )
    return trigger_id


def gtt_delete(*, actor, account_id: int, trigger_id: str, ip: str | None = None) -> None:
    """Delete the GTT ``trigger_id`` at the broker. Raises as ``gtt_modify`` does."""
    account = _account(actor, account_id, "trade")
    trigger_id = _trigger_id(trigger_id)
    adapter_for(account).gtt_delete(trigger_id)
    audit_record(
        actor=audit_actor(actor),
        action="gtt.deleted",
        target=account,
        payload={"account_id": account.pk, "trigger_id": trigger_id},
        ip=ip,
    )


def gtt_list(*, actor, account_id: int) -> list[Gtt]:
    """Return the account's GTT book at its broker, for an actor who may view the account. Raises the
    gate's errors, BrokerRejected ``broker_cannot_gtt`` and the broker's errors."""
    account = _account(actor, account_id, "view")
    return adapter_for(account).gtt_list()


def gtt_order(request: GttRequest) -> GttOrder:
    """Check ``request`` against its instrument and last price; return the GTT to send. Raises
    GttInvalid naming the rule (``code``) and, for a number, the field (``extra["field"]``)."""
    if request.kind not in (GTT_SINGLE, GTT_OCO):
        raise GttInvalid("Choose a single or an OCO GTT.", code="gtt_kind_invalid", extra={"field": "kind"})
    if request.side not in Side.values:
        raise GttInvalid("Side must be BUY or SELL.", code="invalid_side", extra={"field": "side"})
    instrument = _instrument(request.instrument_id)
    _check_product(request.product, instrument)
    _check_quantity(request.quantity, instrument.lot_size)
    tick = instrument.tick_size
    if request.kind == GTT_SINGLE:
        trigger = _price("trigger_price", request.trigger_price, tick)
        price = _price("price", request.price, tick)
        last_price = _last_price(instrument)
        if trigger == last_price:
            raise GttInvalid(
                f"The trigger is at the last price {last_price}: set it above the last price to act on a rise,"
                " or below it to act on a fall.",
                code="gtt_trigger_at_last_price",
                extra={"field": "trigger_price", "last_price": str(last_price)},
            )
        legs: tuple[GttLeg, ...] = (_leg(request, trigger, price),)
    else:
        stop = _price("stoploss_trigger", request.stoploss_trigger, tick)
        stop_price = _price("stoploss_price", request.stoploss_price, tick)
        target = _price("target_trigger", request.target_trigger, tick)
        target_price = _price("target_price", request.target_price, tick)
        last_price = _last_price(instrument)
        _check_oco_sides(request.side, stop, target, last_price)
        legs = (_leg(request, stop, stop_price), _leg(request, target, target_price))
    return GttOrder(instrument_id=instrument.pk, kind=request.kind, legs=legs, last_price=last_price)


# --- the checks -------------------------------------------------------------------------------------
def _account(actor, account_id: int, access: Access):
    account = account_get_for_user(user=actor, account_id=account_id, access=access)
    if not family(account.broker).capabilities.gtt:
        raise no_gtt(family(account.broker))
    return account


def _trigger_id(trigger_id: Any) -> str:
    if not (
        isinstance(trigger_id, str)
        and 0 < len(trigger_id) <= MAX_TRIGGER_ID_LENGTH
        and trigger_id.isascii()
        and trigger_id.isalnum()
    ):
        raise GttInvalid(
            "That is not a GTT's id.", code="gtt_trigger_id_invalid", extra={"trigger_id": str(trigger_id)[:40]}
        )
    return trigger_id


def _instrument(instrument_id: Any) -> Instrument:
    instrument = None
    if isinstance(instrument_id, int) and not isinstance(instrument_id, bool):
        instrument = Instrument.objects.filter(pk=instrument_id).first()
    if instrument is None:
        raise GttInvalid(
            f"Instrument {str(instrument_id)[:40]} was not found.",
            code="instrument_not_found",
            extra={"field": "instrument"},
        )
    if not instrument.tradable:
        raise GttInvalid(
            f"{instrument.tradingsymbol} cannot be traded.",
            code="instrument_not_tradable",
            extra={"field": "instrument"},
        )
    if instrument.expiry is not None and instrument.expiry < timezone.localdate():
        raise GttInvalid(
            f"The contract expired on {instrument.expiry}.", code="contract_expired", extra={"field": "instrument"}
        )
    return instrument


def _check_product(product: str, instrument: Instrument) -> None:
    if product not in GTT_PRODUCTS:
        raise GttInvalid(
            f"A GTT's product is one of {', '.join(sorted(GTT_PRODUCTS))}.",
            code="gtt_product_invalid",
            extra={"field": "product"},
        )
    derivative = instrument.instrument_type in DERIVATIVES
    if (derivative and product == "CNC") or (not derivative and product == "NRML"):
        raise GttInvalid(
            f"Product {product} is not available for {instrument.instrument_type} instruments.",
            code="product_not_allowed_for_instrument",
            extra={"field": "product"},
        )


def _check_quantity(quantity: Any, lot_size: int) -> None:
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise GttInvalid("Quantity must be a whole number.", code="quantity_not_whole", extra={"field": "quantity"})
    if quantity <= 0:
        raise GttInvalid("Quantity must be positive.", code="quantity_not_positive", extra={"field": "quantity"})
    if quantity > MAX_ORDER_QUANTITY:
        raise GttInvalid(
            f"Quantity can be at most {MAX_ORDER_QUANTITY}.", code="quantity_out_of_range", extra={"field": "quantity"}
        )
    if quantity % max(lot_size, 1):
        raise GttInvalid(
            f"Quantity {quantity} is not a multiple of the lot size {lot_size}.",
            code="quantity_not_lot_multiple",
            extra={"field": "quantity", "lot_size": lot_size},
        )


def _price(field: str, value: Any, tick: Decimal) -> Decimal:
    """A price or trigger: a finite Decimal, positive, below MAX_PRICE and on the instrument's tick."""
    label = _LABELS[field]
    extra = {"field": field}
    if value is None:
        raise GttInvalid(f"{label} is required.", code=f"{field}_required", extra=extra)
    if not isinstance(value, Decimal):
        raise GttInvalid(f"{label} must be a number.", code=f"{field}_not_a_number", extra=extra)
    if not value.is_finite():
        raise GttInvalid(f"{label} must be a finite number.", code=f"{field}_not_finite", extra=extra)
    if not -MAX_PRICE < value < MAX_PRICE:
        raise GttInvalid(f"{label} must be below {MAX_PRICE}.", code=f"{field}_out_of_range", extra=extra)
    if value <= 0:
        raise GttInvalid(f"{label} must be positive.", code=f"{field}_not_positive", extra=extra)
    # Bounded above, so the remainder is exact; a tick of 0 (an index) was refused as not tradable.
    if tick > 0 and value % tick:
        raise GttInvalid(
            f"{label} {value} is not a multiple of the tick size {tick.normalize():f}.",
            code=f"{field}_off_tick",
            extra={**extra, "tick_size": str(tick)},
        )
    return value


_LABELS = {
    "trigger_price": "Trigger price",
    "price": "Price",
    "stoploss_trigger": "Stop-loss trigger",
    "stoploss_price": "Stop-loss price",
    "target_trigger": "Target trigger",
    "target_price": "Target price",
}


def _last_price(instrument: Instrument) -> Decimal:
    quote = get_quote(instrument.pk)
    if quote is None or quote.ltp is None:
        raise GttInvalid(
            f"{instrument.tradingsymbol} has no last price yet: a GTT's triggers are set against it.",
            code="gtt_no_last_price",
        )
    return quote.ltp


def _check_oco_sides(side: str, stop: Decimal, target: Decimal, last_price: Decimal) -> None:
    """A SELL OCO exits a long: stop below the last price, target above. A BUY exits a short: the reverse."""
    long_exit = side == Side.SELL
    if (stop >= last_price) if long_exit else (stop <= last_price):
        where = "below" if long_exit else "above"
        raise GttInvalid(
            f"The stop-loss trigger must be {where} the last price {last_price} for a {side.lower()} OCO.",
            code="gtt_stoploss_wrong_side",
            extra={"field": "stoploss_trigger", "last_price": str(last_price)},
        )
    if (target <= last_price) if long_exit else (target >= last_price):
        where = "above" if long_exit else "below"
        raise GttInvalid(
            f"The target trigger must be {where} the last price {last_price} for a {side.lower()} OCO.",
            code="gtt_target_wrong_side",
            extra={"field": "target_trigger", "last_price": str(last_price)},
        )


def _leg(request: GttRequest, trigger: Decimal, price: Decimal) -> GttLeg:
    return GttLeg(
        trigger_price=trigger, side=request.side, quantity=request.quantity, price=price, product=request.product
    )


def _payload(account, trigger_id: str, order: GttOrder) -> dict:
    return {
        "account_id": account.pk,
        "trigger_id": trigger_id,
        "kind": order.kind,
        "instrument_id": order.instrument_id,
        "last_price": order.last_price,
        "legs": [
            {
                "trigger_price": leg.trigger_price,
                "side": leg.side,
                "quantity": leg.quantity,
                "price": leg.price,
                "product": leg.product,
                "order_type": leg.order_type,
            }
            for leg in order.legs
        ],
    }
