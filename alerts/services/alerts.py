"""Creating, changing and deleting alerts: every field checked first, each refusal naming its field,
nothing saved unless all pass; each act audited and announced to the tick listeners."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction

from accounts.models import Membership
from alerts.book import invalidate
from alerts.conditions import AVERAGE_CONDITIONS, CHANGE_CONDITIONS, PRICE_CONDITIONS
from alerts.errors import AlertInvalid
from alerts.models import Alert, AlertState, Average, Condition, Repeat, TelegramBot
from audit.services import audit_record
from brokers.errors import BrokerAccountForbidden, BrokerAccountNotFound
from brokers.selectors import account_get_for_user
from marketdata.models import Instrument, Product

MAX_ALERTS_PER_USER = 200
MAX_PRICE = Decimal("1000000000")  # the level's column keeps ten digits before the point
MAX_CHANGE_PCT = Decimal("10000")
MAX_LOTS = 100_000
MIN_COOLDOWN, MAX_COOLDOWN = 10, 7 * 24 * 3600
MAX_AVERAGE_MINUTES = 375  # one NSE session of 1-minute bars
ORDER_TYPES = ("MARKET", "LIMIT")
SIDES = ("BUY", "SELL")
FIELDS = (
    "instrument",
    "condition",
    "level",
    "average",
    "average_minutes",
    "repeat",
    "cooldown_seconds",
    "note",
    "notify_email",
    "notify_telegram",
    "telegram_chat_id",
    "account",
    "order_side",
    "order_lots",
    "order_type",
    "order_product",
    "order_price",
)


class _Problems:
    def __init__(self) -> None:
        self.fields: dict[str, dict[str, str]] = {}

    def add(self, field: str, code: str, message: str) -> None:
        self.fields.setdefault(field, {"code": code, "message": message})

    def raise_any(self) -> None:
        if self.fields:
            field, first = next(iter(self.fields.items()))
            raise AlertInvalid(f"{field}: {first['message']}", code=first["code"], extra={"fields": self.fields})


def _text(values: dict, field: str, problems: _Problems, *, limit: int) -> str:
    raw = values.get(field)
    if raw is None:
        return ""
    if not isinstance(raw, str):
        problems.add(field, "not_text", "must be text.")
        return ""
    if "\x00" in raw:
        problems.add(field, "nul_byte", "must not contain NUL bytes.")
        return ""
    if len(raw) > limit:
        problems.add(field, "too_long", f"must be at most {limit} characters.")
        return ""
    return raw.strip()


def _decimal(values: dict, field: str, problems: _Problems) -> Decimal | None:
    raw = values.get(field)
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
        problems.add(field, "not_a_number", "must be a number.")
        return None
    if isinstance(raw, str) and (len(raw) > 40 or "\x00" in raw):
        problems.add(field, "not_a_number", "must be a number of at most 40 characters.")
        return None
    try:
        number = Decimal(str(raw).strip())
    except InvalidOperation:
        problems.add(field, "not_a_number", "must be a number.")
        return None
    if not number.is_finite():
        problems.add(field, "not_a_number", "must be a finite number.")
        return None
    if number.as_tuple().exponent < -4:  # type: ignore[operator]  # finite: the exponent is an int
        problems.add(field, "too_precise", "takes at most 4 decimal places.")
        return None
    return number


def _whole(values: dict, field: str, problems: _Problems, *, low: int, high: int) -> int | None:
    raw = values.get(field)
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not isinstance(raw, str | int) or (isinstance(raw, str) and len(raw) > 12):
        problems.add(field, "not_a_whole_number", "must be a whole number.")
        return None
    try:
        number = int(raw)
    except ValueError:
        problems.add(field, "not_a_whole_number", "must be a whole number.")
        return None
    if not low <= number <= high:
        problems.add(field, "out_of_range", f"must be between {low} and {high}.")
        return None
    return number


def _flag(values: dict, field: str) -> bool:
    raw = values.get(field)
    return raw is True or (isinstance(raw, str) and raw.lower() in ("1", "true", "on", "yes"))


def _choice(values: dict, field: str, choices, problems: _Problems, *, default: str = "") -> str:
    raw = values.get(field)
    if raw is None or raw == "":
        return default
    if raw not in choices:
        problems.add(field, "unknown_choice", f"must be one of {', '.join(str(c) for c in choices)}.")
        return default
    return str(raw)


def alert_clean(*, user, values: dict[str, Any]) -> dict[str, Any]:
    """Return the alert's fields from ``values`` (a form's or a JSON body's), every one checked.

    Raises AlertInvalid (422) with ``extra["fields"]``: {field: {"code", "message"}} for each refusal.
    """
    problems = _Problems()
    unknown = sorted(set(values) - set(FIELDS))
    for field in unknown[:5]:
        problems.add(str(field)[:40], "unknown_field", "is not a field of an alert.")
    clean: dict[str, Any] = {}

    instrument = None
    instrument_id = _whole(values, "instrument", problems, low=1, high=2**62)
    if instrument_id is None and "instrument" not in problems.fields:
        problems.add("instrument", "required", "choose an instrument.")
    elif instrument_id is not None:
        instrument = Instrument.objects.filter(pk=instrument_id, is_active=True).first()
        if instrument is None:
            problems.add("instrument", "unknown_instrument", f"no active instrument has id {instrument_id}.")
    clean["instrument"] = instrument

    condition = _choice(values, "condition", Condition.values, problems)
    if not condition and "condition" not in problems.fields:
        problems.add("condition", "required", "choose a condition.")
    clean["condition"] = condition

    level = _decimal(values, "level", problems)
    if condition in PRICE_CONDITIONS:
        if level is None and "level" not in problems.fields:
            problems.add("level", "required", "give the price level.")
        elif level is not None and level <= 0:
            problems.add("level", "wrong_sign", "a price level must be above zero.")
        elif level is not None and level >= MAX_PRICE:
            problems.add("level", "out_of_range", f"must be below {MAX_PRICE}.")
    elif condition in CHANGE_CONDITIONS:
        if level is None and "level" not in problems.fields:
            problems.add("level", "required", "give the % change.")
        elif level is not None and level <= -100:
            problems.add("level", "wrong_sign", "a price cannot fall 100% or more: give a change above -100.")
        elif level is not None and level > MAX_CHANGE_PCT:
            problems.add("level", "out_of_range", f"must be at most {MAX_CHANGE_PCT}%.")
    elif condition in AVERAGE_CONDITIONS:
        level = None
    clean["level"] = level

    average = _choice(values, "average", Average.values, problems)
    minutes = _whole(values, "average_minutes", problems, low=2, high=MAX_AVERAGE_MINUTES)
    if condition in AVERAGE_CONDITIONS:
        if not average and "average" not in problems.fields:
            problems.add("average", "required", "choose SMA or EMA.")
        if minutes is None and "average_minutes" not in problems.fields:
            problems.add("average_minutes", "required", "give the average's length in minutes.")
    else:
        average, minutes = "", None
    clean["average"], clean["average_minutes"] = average, minutes

    clean["repeat"] = _choice(values, "repeat", Repeat.values, problems, default=Repeat.ONCE)
    cooldown = _whole(values, "cooldown_seconds", problems, low=MIN_COOLDOWN, high=MAX_COOLDOWN)
    clean["cooldown_seconds"] = 300 if cooldown is None else cooldown
    clean["note"] = _text(values, "note", problems, limit=200)
    clean["notify_email"] = _flag(values, "notify_email")
    clean["notify_telegram"] = _flag(values, "notify_telegram")
    clean["telegram_chat_id"] = _text(values, "telegram_chat_id", problems, limit=64)
    if clean["notify_email"] and not user.email:
        problems.add("notify_email", "no_email", "your profile has no e-mail address.")

    account = None
    account_id = _whole(values, "account", problems, low=1, high=2**62)
    if account_id is not None:
        try:
            account = account_get_for_user(user=user, account_id=account_id, access="trade")
        except (BrokerAccountNotFound, BrokerAccountForbidden):
            problems.add("account", "account_not_tradable", f"you may not trade on account {account_id}.")
    clean["account"] = account
    _clean_order(values, clean, problems, instrument=instrument, wants_order=account_id is not None)

    organisation_id = account.organisation_id if account is not None else _organisation_of(user)
    if organisation_id is None:
        problems.add("account", "no_organisation", "you are not a member of any organisation.")
    clean["organisation_id"] = organisation_id
    if clean["notify_telegram"] and organisation_id is not None:
        bot = TelegramBot.objects.filter(organisation_id=organisation_id).first()
        if bot is None:
            problems.add("notify_telegram", "telegram_not_set_up", "your organisation has no Telegram bot yet.")
        elif not (clean["telegram_chat_id"] or bot.chat_id):
            problems.add("telegram_chat_id", "required", "give the chat id (the organisation names none).")
    problems.raise_any()
    return clean


def _clean_order(values: dict, clean: dict, problems: _Problems, *, instrument, wants_order: bool) -> None:
    side = _choice(values, "order_side", SIDES, problems)
    lots = _whole(values, "order_lots", problems, low=1, high=MAX_LOTS)
    order_type = _choice(values, "order_type", ORDER_TYPES, problems, default="MARKET")
    product = _choice(values, "order_product", Product.values, problems, default=Product.MIS)
    price = _decimal(values, "order_price", problems)
    if not wants_order:
        clean.update(order_side="", order_lots=None, order_type="", order_product="", order_price=None)
        return
    if not side and "order_side" not in problems.fields:
        problems.add("order_side", "required", "choose buy or sell.")
    if lots is None and "order_lots" not in problems.fields:
        problems.add("order_lots", "required", "give the number of lots.")
    if instrument is not None and not instrument.tradable:
        problems.add("instrument", "not_tradable", f"{instrument.tradingsymbol} cannot be traded (an index).")
    if order_type == "LIMIT":
        if price is None and "order_price" not in problems.fields:
            problems.add("order_price", "required", "a limit order needs a price.")
        elif price is not None and not 0 < price < MAX_PRICE:
            problems.add("order_price", "wrong_sign", "a limit price must be above zero.")
    else:
        price = None
    clean.update(order_side=side, order_lots=lots, order_type=order_type, order_product=product, order_price=price)


def _organisation_of(user) -> int | None:
    return (
        Membership.objects.filter(user=user).order_by("organisation__name").values_list("organisation_id", flat=True)
    ).first()


def _payload(alert: Alert) -> dict:
    return {
        "alert_id": alert.pk,
        "instrument_id": alert.instrument_id,
        "condition": alert.condition,
        "level": None if alert.level is None else str(alert.level),
        "average": alert.average,
        "average_minutes": alert.average_minutes,
        "repeat": alert.repeat,
        "channels": [c for c, on in (("email", alert.notify_email), ("telegram", alert.notify_telegram)) if on],
        "order": None
        if not alert.has_order
        else {"account_id": alert.account_id, "side": alert.order_side, "lots": alert.order_lots},
    }


def alert_create(*, actor, values: dict[str, Any], ip: str | None = None) -> Alert:
    """Check ``values`` (``alert_clean``) and save the alert, audited ``alert.created``; return it."""
    clean = alert_clean(user=actor, values=values)
    if Alert.objects.filter(user=actor).exclude(state=AlertState.DISABLED).count() >= MAX_ALERTS_PER_USER:
        raise AlertInvalid(
            f"You have {MAX_ALERTS_PER_USER} alerts already: delete some first.",
            code="alert_limit",
            extra={"fields": {"__all__": {"code": "alert_limit", "message": "too many alerts."}}},
        )
    with transaction.atomic():
        alert = Alert.objects.create(user=actor, **clean)
        audit_record(actor=actor, action="alert.created", target=alert, payload=_payload(alert), ip=ip)
        transaction.on_commit(invalidate)
    return alert


def alert_update(*, actor, alert: Alert, values: dict[str, Any], ip: str | None = None) -> Alert:
    """Replace the alert's fields with ``values`` (checked as for creating) and arm it again; audited
    ``alert.updated``. Return it."""
    clean = alert_clean(user=actor, values=values)
    with transaction.atomic():
        for field, value in clean.items():
            setattr(alert, field, value)
        alert.state = AlertState.ACTIVE
        alert.save()
        audit_record(actor=actor, action="alert.updated", target=alert, payload=_payload(alert), ip=ip)
        transaction.on_commit(invalidate)
    return alert


def alert_delete(*, actor, alert: Alert, ip: str | None = None) -> None:
    """Delete the alert and its firings; audited ``alert.deleted``."""
    with transaction.atomic():
        audit_record(actor=actor, action="alert.deleted", target=alert, payload=_payload(alert), ip=ip)
        alert.delete()
        transaction.on_commit(invalidate)
