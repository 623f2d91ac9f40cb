"""Setting an organisation's risk limits: checking values as a form or API sends them
(``risk_limit_clean``) and writing one scope's row, audited (``risk_limit_set``).

The validation tables below bound each limit field as the model field allows. The effective limits an
order gets are combined and cached per process by rms.limits.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_DOWN, Decimal, InvalidOperation

from django.db import models, transaction

from accounts.models import Membership, Organisation
from audit.services import audit_record
from rms.errors import RiskLimitForbidden, RiskLimitInvalid, RiskLimitScopeNotFound
from rms.models import LIMIT_FIELDS, LimitScope, RiskLimit
from rms.selectors import limit_choices, limit_values
from rms.services.access import _managed_orgs

_POSITIVE_INT_MAX = 2_147_483_647  # PositiveIntegerField
_WHOLE_FIELDS = {"max_order_quantity", "max_open_orders", "max_orders_per_second"}


def _digits(name: str) -> tuple[int, int]:
    """Return (digits before the point, digits after) as the model's DecimalField allows."""
    field = RiskLimit._meta.get_field(name)
    assert isinstance(field, models.DecimalField)
    return field.max_digits - field.decimal_places, field.decimal_places


_DECIMAL_FIELDS = {name: _digits(name) for name in ("max_order_value", "max_daily_loss", "max_ltp_deviation_pct")}
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
    value: int | Decimal | list[str] | None
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
        accounts = BrokerAccount.objects.filter(organisation=organisation)
        account = accounts.filter(pk=target_id).first() if target_id is not None else None
        if account is not None:
            return account, {"organisation": None, "account": account, "user": None, "strategy": ""}
        raise RiskLimitScopeNotFound(f"Broker account {target_id} is not one of this organisation's.")
    if scope == LimitScope.USER:
        membership = Membership.objects.select_related("user").filter(organisation=organisation)
        member = membership.filter(user_id=target_id).first() if target_id is not None else None
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
