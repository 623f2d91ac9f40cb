"""What a caller asks for (``OrderRequest``) and the checks on it before any rule runs.

The request's choices and numbers are checked before any arithmetic on them; a refusal is audited as
``rms.rejected`` naming the rule, and nothing else is written.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal

from audit.services import audit_record
from brokers.adapters.base import Capabilities
from infra.prepared import Prepared
from marketdata.models import Instrument
from orders import metrics
from orders.errors import OrderInvalid
from orders.models import OrderType, Product, Side, Validity
from rms.errors import RiskRejected
from rms.services import DeploymentLimits, OrderIntent, check_order_numbers, record_rejection

GENERIC_ALGO_ID = "GENERIC"  # exchange's generic id for orders from unregistered algos / manual orders


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What a caller asks for; the same for every source."""

    instrument_id: int
    side: str
    quantity: int
    order_type: str
    product: str
    validity: str = Validity.DAY
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    tag: str = ""
    strategy: str = ""
    algo_id: str = ""
    # A strategy deployment's own limits and standing (rms.services.DeploymentLimits), checked before
    # its entries; None for every other order.
    deployment_limits: DeploymentLimits | None = None


# Read on every order placed: compiled once (infra/prepared.py).
_INSTRUMENT = Prepared(lambda p: Instrument.objects.filter(pk=p.pk)[:1], pk=int)


def actor_id(actor) -> int | None:
    return getattr(actor, "pk", None) if actor is not None and not isinstance(actor, str) else None


def audit_actor(actor):
    return actor if actor is not None else "system:orders"


def request_payload(request: OrderRequest, **extra) -> dict:
    return {
        "instrument_id": request.instrument_id,
        "side": request.side,
        "quantity": request.quantity,
        "order_type": request.order_type,
        "product": request.product,
        "validity": request.validity,
        "price": _audit_number(request.price),
        "trigger_price": _audit_number(request.trigger_price),
        **extra,
    }


def _audit_number(value):
    """A price as the audit trail can hold it: a refused NaN or infinity is recorded as its text."""
    return str(value) if isinstance(value, Decimal) and not value.is_finite() else value


def check_choices(request: OrderRequest) -> None:
    for name, value, choices in (
        ("side", request.side, Side.values),
        ("order_type", request.order_type, OrderType.values),
        ("product", request.product, Product.values),
        ("validity", request.validity, Validity.values),
    ):
        if value not in choices:
            raise OrderInvalid(
                f"{name} must be one of {', '.join(choices)}.", code=f"invalid_{name}", extra={name: value}
            )


def check_numbers(request: OrderRequest) -> None:
    """Refuse a quantity or price that is not a bounded number before any arithmetic on it (margin,
    value, band): raises OrderInvalid for a value of the wrong type, RiskRejected naming the field for
    one out of range or not finite (rms.services.check_order_numbers)."""
    if isinstance(request.quantity, bool) or not isinstance(request.quantity, int):
        raise OrderInvalid("Quantity must be a whole number.", code="quantity_not_whole", extra={"field": "quantity"})
    for name in ("price", "trigger_price"):
        value = getattr(request, name)
        if value is not None and not isinstance(value, Decimal):
            raise OrderInvalid(
                f"{name.replace('_', ' ').capitalize()} must be a number.",
                code=f"{name}_not_a_number",
                extra={"field": name},
            )
    check_order_numbers(quantity=request.quantity, price=request.price, trigger_price=request.trigger_price)


def instrument_of(request: OrderRequest) -> Instrument:
    """Return the request's instrument. Raises OrderInvalid ``instrument_not_found``."""
    instrument = _INSTRUMENT.first(pk=request.instrument_id) if isinstance(request.instrument_id, int) else None
    if instrument is None:
        raise OrderInvalid(
            f"Instrument {request.instrument_id} was not found.",
            code="instrument_not_found",
            extra={"instrument_id": request.instrument_id},
        )
    return instrument


def check_capabilities(capabilities: Capabilities, request: OrderRequest, instrument: Instrument) -> None:
    """Refuse, before anything is sent, what the account's broker family cannot do (its declared
    ``Capabilities``): raises OrderInvalid ``broker_cannot_<what>`` naming the value and the choices."""
    for what, value, offered in (
        ("exchange", instrument.exchange, capabilities.exchanges),
        ("order_type", request.order_type, capabilities.order_types),
        ("product", request.product, capabilities.products),
        ("validity", request.validity, capabilities.validities),
    ):
        if value not in offered:
            raise OrderInvalid(
                f"This account's broker does not take {what.replace('_', ' ')} {value}"
                f" (it takes {', '.join(sorted(offered))}).",
                code=f"broker_cannot_{what}",
                extra={what: value, "offered": sorted(offered)},
            )


@contextmanager
def arithmetic_refused():
    """Turn arithmetic the bounds did not foresee (margin, value, band) into a 422, never a 500."""
    try:
        yield
    except ArithmeticError:
        raise OrderInvalid(
            "The order's numbers are too large to compute its value and margin.", code="order_value_out_of_range"
        ) from None


def order_intent(*, account, actor, instrument: Instrument, request: OrderRequest) -> OrderIntent:
    """Return the request as the pre-trade rules see it (rms.services.check_pre_trade)."""
    return OrderIntent(
        account_id=account.pk,
        organisation_id=account.organisation_id,
        user_id=actor_id(actor),
        strategy=request.strategy,
        exchange=instrument.exchange,
        instrument_type=instrument.instrument_type,
        lot_size=instrument.lot_size,
        tick_size=instrument.tick_size,
        freeze_quantity=instrument.freeze_quantity,
        lower_circuit=instrument.lower_circuit,
        upper_circuit=instrument.upper_circuit,
        expiry=instrument.expiry,
        tradable=instrument.tradable,
        side=request.side,
        quantity=request.quantity,
        order_type=request.order_type,
        product=request.product,
        validity=request.validity,
        price=request.price,
        trigger_price=request.trigger_price,
        deployment=request.deployment_limits,
    )


def reject_input(*, actor, account, request: OrderRequest, error, ip) -> None:
    """Audit a rejected order (nothing else is written) and count it."""
    metrics.orders_rejected_total.labels(rule=error.code).inc()
    if isinstance(error, RiskRejected):
        record_rejection(
            actor=audit_actor(actor), error=error, payload=request_payload(request, account_id=account.pk), ip=ip
        )
    else:
        audit_record(
            actor=audit_actor(actor),
            action="rms.rejected",
            payload={"rule": error.code, "message": error.message, **request_payload(request, account_id=account.pk)},
            ip=ip,
        )
