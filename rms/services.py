"""Pre-trade risk checks, the kill switch, and setting limits.

``check_pre_trade`` is the only pre-trade path: every order (browser, API, strategy, webhook, each
slice of a sliced order, each leg of a basket, square-offs) passes through it. It is pure computation
over the order, the account's state gathered by the OMS under the account lock, and limits cached in
process (rms.limits), so it costs microseconds; the only I/O is the orders-per-second governor.
Every rejection is a ``RiskRejected`` whose code names the rule (table in docs/rms.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_DOWN, Decimal, InvalidOperation

from django.db import transaction
from django.utils import timezone

from accounts.models import Membership, Organisation, Role
from compliance.services import audit_record
from rms.errors import (
    KillSwitchForbidden,
    RiskLimitForbidden,
    RiskLimitInvalid,
    RiskLimitScopeNotFound,
    RiskRejected,
)
from rms.limits import Limits, limits_for
from rms.models import LIMIT_FIELDS, KillScope, KillSwitch, LimitScope, RiskLimit
from rms.selectors import limit_choices, limit_values
from rms.throttle import ThrottleUnavailable, get_throttle
from terminal.lib.prepared import Prepared

MARKET_TYPES = frozenset({"MARKET", "SL-M"})
PRICED_TYPES = frozenset({"LIMIT", "SL"})
STOP_TYPES = frozenset({"SL", "SL-M"})
DERIVATIVES = frozenset({"FUT", "CE", "PE"})


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


def _reject(rule: str, message: str, *, status: int = 422, **extra) -> RiskRejected:
    return RiskRejected(rule, message, status=status, extra={k: str(v) for k, v in extra.items()})


def validate_order_input(intent: OrderIntent, today: date) -> None:
    """Check the order against the instrument's own rules; raise RiskRejected (422) naming the rule."""
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
            raise _reject(
                f"{name}_off_tick",
                f"{name.replace('_', ' ').capitalize()} {value} is not a multiple of the tick size {intent.tick_size}.",
                **{name: value, "tick_size": intent.tick_size},
            )
    if intent.order_type == "SL":
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
    if limits.max_order_value is not None and reference is not None:
        value = reference * intent.quantity
        if value > limits.max_order_value:
            raise _reject(
                "max_order_value",
                f"Order value {value} is above the limit of {limits.max_order_value}.",
                value=value,
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
                f"{name.replace('_', ' ').capitalize()} {value} is outside the band "
                f"{intent.lower_circuit}-{intent.upper_circuit}.",
                lower=intent.lower_circuit,
                upper=intent.upper_circuit,
            )
    if limits.max_ltp_deviation_pct is not None and intent.price is not None and state.ltp:
        deviation = abs(intent.price - state.ltp) * 100 / state.ltp
        if deviation > limits.max_ltp_deviation_pct:
            raise _reject(
                "price_far_from_ltp",
                f"Price {intent.price} is {deviation:.2f}% from the last price {state.ltp} "
                f"(limit {limits.max_ltp_deviation_pct}%).",
                limit_pct=limits.max_ltp_deviation_pct,
            )
    if limits.max_open_orders is not None and state.open_orders >= limits.max_open_orders:
        raise _reject(
            "max_open_orders",
            f"The account already has {state.open_orders} open orders (limit {limits.max_open_orders}).",
            limit=limits.max_open_orders,
        )
    if not state.reduces_position:
        loss = -(state.realised_today + state.mtm)
        if limits.max_daily_loss is not None and loss >= limits.max_daily_loss:
            raise _reject(
                "max_daily_loss",
                f"Today's loss {loss} has reached the limit of {limits.max_daily_loss}.",
                loss=loss,
                limit=limits.max_daily_loss,
            )
        if state.required_margin > state.available_margin:
            raise _reject(
                "insufficient_margin",
                f"The order needs {state.required_margin} of margin; {state.available_margin} is available.",
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


def record_rejection(*, actor, error: RiskRejected, payload: dict, ip: str | None = None) -> None:
    """Audit a pre-trade rejection (its own transaction: the order itself was never written)."""
    audit_record(
        actor=actor, action="rms.rejected", payload={"rule": error.rule, "message": error.message, **payload}, ip=ip
    )


# --- kill switch ----------------------------------------------------------------------------------


def kill_switch_keys(*, organisation_id: int, account_id: int, user_id: int | None) -> list[str]:
    """Return the keys of every kill switch that covers an order by ``user_id`` on the account."""
    keys = [KillScope.GLOBAL, f"organisation:{organisation_id}", f"account:{account_id}"]
    if user_id is not None:
        keys.append(f"user:{user_id}")
    return keys


# Read on every order placed: compiled once (four keys; an order without a user repeats the first).
_ACTIVE_KILL_SWITCH = Prepared(
    lambda p: KillSwitch.objects.filter(active=True, key__in=[p.k0, p.k1, p.k2, p.k3])
    .order_by("pk")
    .values_list("key", flat=True)[:1],
    k0=str,
    k1=str,
    k2=str,
    k3=str,
)


def active_kill_switch(*, organisation_id: int, account_id: int, user_id: int | None) -> str | None:
    """Return the key of an active kill switch covering the order, or None."""
    keys = kill_switch_keys(organisation_id=organisation_id, account_id=account_id, user_id=user_id)
    k0, k1, k2, k3 = (str(key) for key in (keys + keys[:1])[:4])
    return _ACTIVE_KILL_SWITCH.first(k0=k0, k1=k1, k2=k2, k3=k3)


def _roles(user) -> dict[int, str]:
    return dict(Membership.objects.filter(user=user).values_list("organisation_id", "role"))


def _managed_orgs(user) -> set[int]:
    return {org for org, role in _roles(user).items() if role in {Role.OWNER, Role.ADMIN}}


def _target_orgs(scope: str, target_id: int | None) -> set[int]:
    from brokers.models import BrokerAccount

    if scope == KillScope.ORGANISATION:
        return {target_id}
    if scope == KillScope.ACCOUNT:
        return set(BrokerAccount.objects.filter(pk=target_id).values_list("organisation_id", flat=True))
    if scope == KillScope.USER:
        return set(Membership.objects.filter(user_id=target_id).values_list("organisation_id", flat=True))
    return set()


def may_engage(*, actor, scope: str, target_id: int | None) -> bool:
    """Anyone who may trade an account may halt it, and users may halt themselves; Owners and Admins
    may halt anything in their organisations; only a superuser may halt everything."""
    if actor is None:  # the system (MTM monitor)
        return True
    if scope == KillScope.GLOBAL:
        return actor.is_superuser
    if scope == KillScope.USER and target_id == actor.pk:
        return True
    if scope == KillScope.ACCOUNT:
        from brokers.selectors import account_list_for_user

        if account_list_for_user(user=actor, access="trade").filter(pk=target_id).exists():
            return True
    orgs = _target_orgs(scope, target_id)
    return (bool(orgs) and orgs <= _managed_orgs(actor)) or actor.is_superuser


def may_release(*, actor, scope: str, target_id: int | None) -> bool:
    """Only an Owner or Admin of the organisation concerned (a superuser for global) lifts a kill switch."""
    if actor is None:
        return False
    if actor.is_superuser:
        return True
    if scope == KillScope.GLOBAL:
        return False
    orgs = _target_orgs(scope, target_id)
    return bool(orgs) and orgs <= _managed_orgs(actor)


def kill_switch_set(*, actor, scope: str, target_id: int | None, reason: str, ip: str | None = None) -> KillSwitch:
    """Turn a kill switch on (inside the caller's transaction) and audit it; return it.

    Raises KillSwitchForbidden when ``actor`` may not engage it. The OMS calls this under the account
    locks and then cancels open orders and squares off positions (orders.services.kill_switch_engage).
    """
    if scope not in KillScope.values or (scope != KillScope.GLOBAL) == (target_id is None):
        raise KillSwitchForbidden(f"Invalid kill switch scope {scope!r}.", code="kill_switch_invalid")
    if not may_engage(actor=actor, scope=scope, target_id=target_id):
        raise KillSwitchForbidden("You may not engage this kill switch.", extra={"scope": scope})
    key = KillSwitch.key_for(scope, target_id)
    switch, _ = KillSwitch.objects.select_for_update().get_or_create(
        key=key, defaults={"scope": scope, "target_id": target_id}
    )
    switch.active = True
    switch.reason = reason[:300]
    switch.engaged_by = _label(actor)
    switch.engaged_at = timezone.now()
    switch.save()
    audit_record(
        actor=actor or "system:rms",
        action="rms.kill_switch_on",
        target=switch,
        payload={"key": key, "reason": switch.reason},
        ip=ip,
    )
    return switch


@transaction.atomic
def kill_switch_release(*, actor, scope: str, target_id: int | None, ip: str | None = None) -> KillSwitch:
    """Lift a kill switch and audit it; return it. Raises KillSwitchForbidden unless Owner/Admin (superuser
    for global), and ``kill_switch_not_active`` (409) when it is not on."""
    if not may_release(actor=actor, scope=scope, target_id=target_id):
        raise KillSwitchForbidden("Only an Owner or Admin may lift a kill switch.", extra={"scope": scope})
    key = KillSwitch.key_for(scope, target_id)
    updated = KillSwitch.objects.filter(key=key, active=True).update(
        active=False, released_by=_label(actor), released_at=timezone.now()
    )
    if updated != 1:
        error = KillSwitchForbidden(f"Kill switch {key} is not on.", code="kill_switch_not_active")
        error.status = 409
        raise error
    switch = KillSwitch.objects.get(key=key)
    audit_record(actor=actor, action="rms.kill_switch_off", target=switch, payload={"key": key}, ip=ip)
    return switch


def _label(actor) -> str:
    return "system:rms" if actor is None else f"user:{actor.pk}"


# --- limits ------------------------------------------------------------------------------------------

_POSITIVE_INT_MAX = 2_147_483_647  # PositiveIntegerField
_WHOLE_FIELDS = {"max_order_quantity", "max_open_orders", "max_orders_per_second"}
# field: (digits before the point, digits after), as the model's DecimalField allows
_DECIMAL_FIELDS = {"max_order_value": (16, 2), "max_daily_loss": (16, 2), "max_ltp_deviation_pct": (4, 2)}
_SET_FIELDS = {
    "allowed_exchanges": ("exchange_unknown", "exchange"),
    "allowed_products": ("product_unknown", "product"),
}


def _clean_number(field: str, raw) -> tuple[int | Decimal | None, tuple[str, str] | None]:
    """Return (value, None) or (None, (code, message)) for one numeric limit."""
    label = LIMIT_FIELDS[field]
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, None
    if isinstance(raw, bool):
        return None, ("limit_not_a_number", f"{label} must be a number.")
    try:
        number = Decimal(raw.strip() if isinstance(raw, str) else str(raw))
    except (InvalidOperation, TypeError, ValueError):
        return None, ("limit_not_a_number", f"{label} must be a number.")
    if not number.is_finite():
        return None, ("limit_not_a_number", f"{label} must be a number.")
    if number < 0:
        return None, ("limit_negative", f"{label} cannot be negative.")
    if field in _WHOLE_FIELDS:
        if number != number.to_integral_value():
            return None, ("limit_not_whole", f"{label} must be a whole number.")
        if number > _POSITIVE_INT_MAX:
            return None, ("limit_too_large", f"{label} can be at most {_POSITIVE_INT_MAX}.")
        return int(number), None
    whole, places = _DECIMAL_FIELDS[field]
    if number >= Decimal(10) ** whole:  # before quantizing: a huge number would overflow the context
        return None, ("limit_too_large", f"{label} must be below {Decimal(10) ** whole}.")
    if number != number.quantize(Decimal(1).scaleb(-places), rounding=ROUND_DOWN):
        return None, ("limit_too_precise", f"{label} takes at most {places} decimal places.")
    return number.quantize(Decimal(1).scaleb(-places)), None


def _clean_set(field: str, raw) -> tuple[list[str] | None, tuple[str, str] | None]:
    """Return (codes in choice order or None for no restriction, None) or (None, (code, message))."""
    if raw is None:
        return None, None
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    if not all(isinstance(item, str) for item in items):
        code, noun = _SET_FIELDS[field]
        return None, (code, f"Each allowed {noun} must be a code such as {limit_choices(field)[0]}.")
    wanted = {item.strip().upper() for item in items if item.strip()}
    choices = limit_choices(field)
    unknown = sorted(wanted - set(choices))
    if unknown:
        code, noun = _SET_FIELDS[field]
        return None, (code, f"Unknown {noun} {', '.join(unknown)}; choose from {', '.join(choices)}.")
    return [code for code in choices if code in wanted] or None, None


def risk_limit_clean(values: Mapping[str, object]) -> dict:
    """Check limit values as a form or API sends them; return {field: whole number, Decimal, list of
    codes or None (no limit)} for the fields given.

    Numbers may be text or numbers, empty or None for no limit; allowed exchanges and products a list
    or comma-separated text of codes (Exchange and Product choices), empty for no restriction. Raises
    RiskLimitInvalid naming every refused field (see rms.errors.RiskLimitInvalid for the codes).
    """
    clean: dict = {}
    problems: dict[str, dict[str, str]] = {}
    for field, raw in values.items():
        if field in _SET_FIELDS:
            value, problem = _clean_set(field, raw)
        elif field in _WHOLE_FIELDS or field in _DECIMAL_FIELDS:
            value, problem = _clean_number(field, raw)
        else:
            value, problem = None, ("limit_field_unknown", f"{field!r} is not a limit.")
        if problem:
            problems[field] = {"code": problem[0], "message": problem[1]}
        else:
            clean[field] = value
    if problems:
        first = next(iter(problems.values()))
        raise RiskLimitInvalid(first["message"], code=first["code"], extra={"fields": problems})
    return clean


def _limit_scope(*, organisation, scope: str, target_id: int | None):
    """Return (the scope's object, the filter naming its RiskLimit rows); raise RiskLimitScopeNotFound."""
    from brokers.models import BrokerAccount

    if scope == LimitScope.ORGANISATION:
        return organisation, {"organisation": organisation, "account": None, "user": None, "strategy": ""}
    if scope == LimitScope.ACCOUNT:
        account = BrokerAccount.objects.filter(pk=target_id, organisation=organisation).first()
        if account is not None:
            return account, {"organisation": None, "account": account, "user": None, "strategy": ""}
        raise RiskLimitScopeNotFound(f"Broker account {target_id} is not one of this organisation's.")
    if scope == LimitScope.USER:
        membership = Membership.objects.select_related("user").filter(organisation=organisation, user_id=target_id)
        member = membership.first()
        if member is not None:
            return member.user, {"organisation": organisation, "account": None, "user": member.user, "strategy": ""}
        raise RiskLimitScopeNotFound(f"User {target_id} is not a member of this organisation.")
    raise RiskLimitScopeNotFound(f"{scope!r} is not a scope of limits; use organisation, account or user.")


def risk_limit_set(
    *,
    actor,
    organisation,
    scope: str,
    target_id: int | None = None,
    values: Mapping[str, object],
    ip: str | None = None,
) -> RiskLimit | None:
    """Set limits of one scope of ``organisation`` and audit the change as ``rms.limits_changed``.

    ``scope`` is ``organisation``, ``account`` (``target_id`` a broker account of the organisation) or
    ``user`` (``target_id`` a member: the limits apply to that user's orders on this organisation's
    accounts only). ``values`` maps limit fields to new values as ``risk_limit_clean`` takes them;
    fields not given keep theirs. The scope keeps one row; when no limit is left the row is deleted
    (no row and an empty row mean the same), so the result is the scope's row, or None.

    Raises RiskLimitForbidden unless ``actor`` is an Owner or Admin of the organisation,
    RiskLimitScopeNotFound for an account or user not in it, RiskLimitInvalid (nothing written) for a
    bad value. Every process uses the new limits from its next order: this one at once, the others
    within ``rms.limits.RECHECK_SECONDS`` (the RiskLimit signals invalidate the limit caches).
    """
    if organisation.pk not in _managed_orgs(actor):
        raise RiskLimitForbidden("Only the Owner and Admins of the organisation set its limits.")
    target, scope_filter = _limit_scope(organisation=organisation, scope=scope, target_id=target_id)
    clean = risk_limit_clean(values)
    with transaction.atomic():
        # One writer per organisation at a time, so two saves of a scope with no row cannot make two.
        Organisation.objects.select_for_update().filter(pk=organisation.pk).first()
        rows = list(RiskLimit.objects.select_for_update().filter(**scope_filter).order_by("pk"))
        before = limit_values(rows)
        after = before | clean
        if after == before and len(rows) <= 1:
            return rows[0] if rows else None
        row: RiskLimit | None = None
        if any(value is not None for value in after.values()):
            row = rows.pop(0) if rows else RiskLimit(**scope_filter)
            for field, value in after.items():
                if field in _SET_FIELDS:
                    value = ",".join(value or [])
                setattr(row, field, value)
            row.save()
        for extra in rows:  # more than one row for the scope (made elsewhere): merged into the one kept
            extra.delete()
        audit_record(
            actor=actor,
            action="rms.limits_changed",
            target=target,
            payload={
                "organisation": organisation.slug,
                "scope": scope,
                "target_id": target.pk,
                "row": row.pk if row else None,
                "before": before,
                "after": after,
            },
            ip=ip,
        )
    return row
