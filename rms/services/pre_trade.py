"""The pre-trade check: the order and account state it reads (``OrderIntent``, ``RiskState``), the
instrument's own rules (``validate_order_input``), every rule in order (``check_pre_trade``), and the
audit of a rejection (``record_rejection``).

``check_pre_trade`` is the only pre-trade path: every order (browser, API, strategy, webhook, each
slice of a sliced order, each leg of a basket, square-offs) passes through it. It is pure computation
over the order, the account's state gathered by the OMS under the account lock, and limits cached in
process (rms.limits), so it costs microseconds; the only I/O is the orders-per-second governor.
Every rejection is a ``RiskRejected`` whose code names the rule (table in docs/rms.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from audit.services import audit_record
from core.money import format_inr, format_number, format_price
from rms.errors import RiskRejected
from rms.limits import Limits, limits_for
from rms.throttle import ThrottleUnavailable, get_throttle

MARKET_TYPES = frozenset({"MARKET", "SL-M"})
PRICED_TYPES = frozenset({"LIMIT", "SL"})
STOP_TYPES = frozenset({"SL", "SL-M"})
DERIVATIVES = frozenset({"FUT", "CE", "PE"})
# The largest numbers an order may carry: above any real order, inside what the order's columns hold
# (price and trigger: 14 digits with 4 after the point), and small enough that quantity x price, the
# margin on it and their sums stay exact in Decimal's 28 digits. Every number a client sends is
# checked against them before any arithmetic (docs/orders.md, "Bounds").
MAX_ORDER_QUANTITY = 100_000_000
MAX_PRICE = Decimal(10) ** 10  # exclusive
PRICE_PLACES = 4


@dataclass(frozen=True, slots=True)
class DeploymentLimits:
    """A strategy deployment's own limits and where it stands, for an order it places (plain values:
    the strategies app computes them, the OMS carries them here in ``OrderIntent.deployment``).

    ``exits`` is whether the order reduces the deployment's own position in its leg: an exit passes
    the deployment's limits, as it passes the daily-loss limit. ``opens_position`` is whether it would
    open a position the deployment does not hold (in that instrument, product and leg).
    """

    key: str  # the deployment's order key (``dep-<id>``), for messages
    max_orders: int | None = None  # orders a day, across its accounts
    max_loss: Decimal | None = None  # the loss (realised + marked to market) at which entries stop
    max_open_positions: int | None = None
    orders_today: int = 0
    pnl: Decimal = Decimal(0)  # its realised + marked-to-market P&L
    open_positions: int = 0
    opens_position: bool = True
    exits: bool = False


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order as the pre-trade check sees it: plain values, nothing to fetch."""

    account_id: int
    organisation_id: int
    user_id: int | None
    strategy: str
    exchange: str
    instrument_type: str
    lot_size: int
    tick_size: Decimal
    freeze_quantity: int | None
    lower_circuit: Decimal | None
    upper_circuit: Decimal | None
    expiry: date | None
    tradable: bool
    side: str
    quantity: int
    order_type: str
    product: str
    validity: str
    price: Decimal | None
    trigger_price: Decimal | None
    deployment: DeploymentLimits | None = None  # set for the orders of a strategy deployment


@dataclass(frozen=True, slots=True)
class RiskState:
    """The account's state at the moment of the check, read by the OMS under the account lock."""

    today: date
    kill_switch: str | None = None  # key of the active kill switch covering this order, if any
    ltp: Decimal | None = None
    open_orders: int = 0
    realised_today: Decimal = Decimal(0)
    mtm: Decimal = Decimal(0)
    available_margin: Decimal = Decimal(0)
    required_margin: Decimal = Decimal(0)  # extra margin this order blocks (0 or less when it reduces exposure)
    reduces_position: bool = False
    # Delivery (CNC) in this instrument: the quantity held (holdings plus today's CNC buys less what
    # was sold, i.e. the CNC position's net quantity) and the CNC sells still working.
    delivery_held: int = 0
    delivery_selling: int = 0
    stop_triggered: bool = False  # a modified SL order that has already triggered (its trigger is spent)


def _reject(rule: str, message: str, *, status: int = 422, **extra) -> RiskRejected:
    return RiskRejected(rule, message, status=status, extra={k: str(v) for k, v in extra.items()})


def check_order_numbers(*, quantity: int, price: Decimal | None, trigger_price: Decimal | None) -> None:
    """Check that the order's numbers are finite and within the bounds above, before any arithmetic
    on them (margin, value, tick, band); raise RiskRejected (422) naming the field otherwise."""
    if quantity > MAX_ORDER_QUANTITY:
        raise _reject(
            "quantity_out_of_range",
            f"Quantity can be at most {format_number(MAX_ORDER_QUANTITY)}.",
            field="quantity",
            max=MAX_ORDER_QUANTITY,
        )
    for name, value in (("price", price), ("trigger_price", trigger_price)):
        if value is None:
            continue
        label = name.replace("_", " ").capitalize()
        if not value.is_finite():
            raise _reject(f"{name}_not_finite", f"{label} must be a finite number.", field=name)
        if not -MAX_PRICE < value < MAX_PRICE:
            raise _reject(
                f"{name}_out_of_range", f"{label} must be below {format_number(MAX_PRICE)}.", field=name, max=MAX_PRICE
            )


def validate_order_input(intent: OrderIntent, today: date) -> None:
    """Check the order against the instrument's own rules; raise RiskRejected (422) naming the rule."""
    check_order_numbers(quantity=intent.quantity, price=intent.price, trigger_price=intent.trigger_price)
    if intent.quantity <= 0:
        raise _reject("quantity_not_positive", "Quantity must be a positive number.", quantity=intent.quantity)
    if not intent.tradable:
        raise _reject("instrument_not_tradable", "This instrument cannot be traded.")
    if intent.expiry is not None and intent.expiry < today:
        raise _reject("contract_expired", f"The contract expired on {intent.expiry}.", expiry=intent.expiry)
    derivative = intent.instrument_type in DERIVATIVES
    if (derivative and intent.product == "CNC") or (not derivative and intent.product == "NRML"):
        raise _reject(
            "product_not_allowed_for_instrument",
            f"Product {intent.product} is not available for {intent.instrument_type} instruments.",
            product=intent.product,
        )
    if intent.order_type in STOP_TYPES and intent.validity == "IOC":
        raise _reject("validity_not_allowed", "Stop-loss orders cannot be IOC.")
    if intent.order_type in PRICED_TYPES:
        if intent.price is None:
            raise _reject("price_required", f"A {intent.order_type} order needs a price.")
        if intent.price <= 0:
            raise _reject("price_not_positive", "Price must be positive.", price=intent.price)
    elif intent.price is not None:
        raise _reject("price_not_allowed", f"A {intent.order_type} order takes no price.")
    if intent.order_type in STOP_TYPES:
        if intent.trigger_price is None:
            raise _reject("trigger_price_required", f"A {intent.order_type} order needs a trigger price.")
        if intent.trigger_price <= 0:
            raise _reject("trigger_price_not_positive", "Trigger price must be positive.")
    elif intent.trigger_price is not None:
        raise _reject("trigger_price_not_allowed", f"A {intent.order_type} order takes no trigger price.")
    if intent.quantity % intent.lot_size:
        raise _reject(
            "quantity_not_lot_multiple",
            f"Quantity {intent.quantity} is not a multiple of the lot size {intent.lot_size}.",
            quantity=intent.quantity,
            lot_size=intent.lot_size,
        )
    for name, value in (("price", intent.price), ("trigger_price", intent.trigger_price)):
        if value is not None and value % intent.tick_size:
            extra: dict[str, Any] = {name: value, "tick_size": intent.tick_size}
            raise _reject(
                f"{name}_off_tick",
                f"{name.replace('_', ' ').capitalize()} {format_price(value)} is not a multiple of the tick size "
                f"{intent.tick_size.normalize():f}.",
                **extra,
            )
    # Checked above: a stop-loss has a trigger price, an SL order a price too.
    if intent.order_type == "SL" and intent.price is not None and intent.trigger_price is not None:
        wrong = intent.trigger_price > intent.price if intent.side == "BUY" else intent.trigger_price < intent.price
        if wrong:
            raise _reject(
                "trigger_price_invalid",
                "For a stop-loss buy the trigger must be at or below the price; for a sell, at or above it.",
            )


def check_pre_trade(*, intent: OrderIntent, state: RiskState) -> Limits:
    """Run every pre-trade rule in a fixed order; return the limits applied.

    Raises RiskRejected naming the first rule the order breaks: 403 for the kill switch, 429 for the
    orders-per-second limit, 503 when the governor is unreachable (fail closed), 422 for the rest.
    The orders-per-second slot is taken last, so an order rejected by another rule does not use one.
    """
    if state.kill_switch:
        raise _reject(
            "kill_switch_active",
            f"Trading is halted by the kill switch ({state.kill_switch}).",
            status=403,
            kill_switch=state.kill_switch,
        )
    validate_order_input(intent, state.today)
    limits = limits_for(
        account_id=intent.account_id,
        organisation_id=intent.organisation_id,
        user_id=intent.user_id,
        strategy=intent.strategy,
    )
    if limits.allowed_exchanges is not None and intent.exchange not in limits.allowed_exchanges:
        raise _reject("exchange_not_allowed", f"Trading on {intent.exchange} is not allowed.", exchange=intent.exchange)
    if limits.allowed_products is not None and intent.product not in limits.allowed_products:
        raise _reject("product_not_allowed", f"Product {intent.product} is not allowed.", product=intent.product)
    if intent.product == "CNC" and intent.side == "SELL":
        # A delivery sell needs the shares: holdings and today's delivery buys, less what is sold or selling.
        sellable = max(state.delivery_held, 0) - state.delivery_selling
        if intent.quantity > sellable:
            raise _reject(
                "insufficient_holdings",
                f"A delivery (CNC) sell of {intent.quantity} needs that many shares held; "
                f"{max(sellable, 0)} can be sold.",
                quantity=intent.quantity,
                held=state.delivery_held,
                selling=state.delivery_selling,
                sellable=max(sellable, 0),
            )
    if intent.freeze_quantity and intent.quantity > intent.freeze_quantity:
        raise _reject(
            "freeze_quantity_exceeded",
            f"Quantity {intent.quantity} is above the freeze quantity {intent.freeze_quantity}; slice the order.",
            quantity=intent.quantity,
            freeze_quantity=intent.freeze_quantity,
        )
    if limits.max_order_quantity is not None and intent.quantity > limits.max_order_quantity:
        raise _reject(
            "max_order_quantity",
            f"Quantity {intent.quantity} is above the limit of {limits.max_order_quantity}.",
            limit=limits.max_order_quantity,
        )
    reference = intent.price if intent.price is not None else state.ltp
    if intent.order_type in MARKET_TYPES and state.ltp is None:
        raise _reject("no_market_price", "A market order needs a last traded price; this contract has none today.")
    if (
        intent.order_type in STOP_TYPES
        and intent.trigger_price is not None
        and state.ltp is not None
        and not state.stop_triggered
    ):
        # As at the exchange: a stop on the wrong side of the last price would trigger at once.
        if intent.side == "BUY" and intent.trigger_price <= state.ltp:
            raise _reject(
                "trigger_wrong_side",
                f"A stop-loss buy's trigger must be above the last price {format_price(state.ltp, intent.tick_size)}.",
                trigger_price=intent.trigger_price,
                ltp=state.ltp,
            )
        if intent.side == "SELL" and intent.trigger_price >= state.ltp:
            raise _reject(
                "trigger_wrong_side",
                f"A stop-loss sell's trigger must be below the last price {format_price(state.ltp, intent.tick_size)}.",
                trigger_price=intent.trigger_price,
                ltp=state.ltp,
            )
    if limits.max_order_value is not None and reference is not None:
        order_value = reference * intent.quantity
        if order_value > limits.max_order_value:
            raise _reject(
                "max_order_value",
                f"Order value {format_inr(order_value)} is above the limit of {format_inr(limits.max_order_value)}.",
                value=order_value,
                limit=limits.max_order_value,
            )
    for name, value in (("price", intent.price), ("trigger_price", intent.trigger_price)):
        if value is None:
            continue
        if (intent.lower_circuit is not None and value < intent.lower_circuit) or (
            intent.upper_circuit is not None and value > intent.upper_circuit
        ):
            raise _reject(
                "price_outside_circuit",
                f"{name.replace('_', ' ').capitalize()} {format_price(value, intent.tick_size)} is outside the band "
                f"{format_price(intent.lower_circuit, intent.tick_size)}-"
                f"{format_price(intent.upper_circuit, intent.tick_size)}.",
                lower=intent.lower_circuit,
                upper=intent.upper_circuit,
            )
    if limits.max_ltp_deviation_pct is not None and intent.price is not None and state.ltp:
        deviation = abs(intent.price - state.ltp) * 100 / state.ltp
        if deviation > limits.max_ltp_deviation_pct:
            raise _reject(
                "price_far_from_ltp",
                f"Price {format_price(intent.price, intent.tick_size)} is {deviation:.2f}% from the last price "
                f"{format_price(state.ltp, intent.tick_size)} "
                f"(limit {limits.max_ltp_deviation_pct}%).",
                limit_pct=limits.max_ltp_deviation_pct,
            )
    if limits.max_open_orders is not None and state.open_orders >= limits.max_open_orders:
        raise _reject(
            "max_open_orders",
            f"The account already has {state.open_orders} open orders (limit {limits.max_open_orders}).",
            limit=limits.max_open_orders,
        )
    if intent.deployment is not None and not intent.deployment.exits:
        check_deployment_limits(intent.deployment)
    if not state.reduces_position:
        loss = -(state.realised_today + state.mtm)
        if limits.max_daily_loss is not None and loss >= limits.max_daily_loss:
            raise _reject(
                "max_daily_loss",
                f"Today's loss {format_inr(loss)} has reached the limit of {format_inr(limits.max_daily_loss)}.",
                loss=loss,
                limit=limits.max_daily_loss,
            )
        if state.required_margin > state.available_margin:
            raise _reject(
                "insufficient_margin",
                f"The order needs {format_inr(state.required_margin)} of margin; "
                f"{format_inr(state.available_margin)} is available.",
                required=state.required_margin,
                available=state.available_margin,
            )
    try:
        allowed = get_throttle().acquire(f"{intent.account_id}:{intent.exchange}", limits.max_orders_per_second)
    except ThrottleUnavailable:
        raise _reject(
            "orders_per_second_unavailable", "The order-rate governor is unreachable; orders are refused.", status=503
        ) from None
    if not allowed:
        raise _reject(
            "orders_per_second",
            f"More than {limits.max_orders_per_second} orders in one second on {intent.exchange}.",
            status=429,
            limit=limits.max_orders_per_second,
            exchange=intent.exchange,
        )
    return limits


def check_deployment_limits(limits: DeploymentLimits) -> None:
    """Check a strategy deployment's own limits for an entry (never for an exit); raise RiskRejected
    (422) with the rule ``deployment_max_orders``, ``deployment_max_loss`` or ``deployment_max_open_positions``."""
    if limits.max_orders is not None and limits.orders_today >= limits.max_orders:
        raise _reject(
            "deployment_max_orders",
            f"The strategy deployment has placed {limits.orders_today} orders today (limit {limits.max_orders}).",
            deployment=limits.key,
            orders=limits.orders_today,
            limit=limits.max_orders,
        )
    loss = -limits.pnl
    if limits.max_loss is not None and loss >= limits.max_loss:
        raise _reject(
            "deployment_max_loss",
            f"The strategy deployment's loss {format_inr(loss)} has reached its limit of "
            f"{format_inr(limits.max_loss)}.",
            deployment=limits.key,
            loss=loss,
            limit=limits.max_loss,
        )
    if (
        limits.max_open_positions is not None
        and limits.opens_position
        and limits.open_positions >= limits.max_open_positions
    ):
        raise _reject(
            "deployment_max_open_positions",
            f"The strategy deployment holds {limits.open_positions} open positions "
            f"(limit {limits.max_open_positions}).",
            deployment=limits.key,
            open_positions=limits.open_positions,
            limit=limits.max_open_positions,
        )


def record_rejection(*, actor, error: RiskRejected, payload: dict, ip: str | None = None) -> None:
    """Audit a pre-trade rejection (its own transaction: the order itself was never written)."""
    audit_record(
        actor=actor, action="rms.rejected", payload={"rule": error.rule, "message": error.message, **payload}, ip=ip
    )
