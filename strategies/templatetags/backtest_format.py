"""Showing a backtest report's values: money in rupees, shares as percent, ratios to two places."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django import template

from marketdata.hours import IST

register = template.Library()


def _number(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


@register.filter
def metric(value: object, kind: str) -> str:
    """``value`` as its kind reads: money ``₹1,234.50``, pct ``12.34 %`` (of a share), ratio ``1.23``, count."""
    number = _number(value)
    if number is None:
        return "—"
    if kind == "money":
        return f"-₹{-number:,.2f}" if number < 0 else f"₹{number:,.2f}"
    if kind == "pct":
        return f"{number * 100:,.2f} %"
    if kind == "ratio":
        return f"{number:,.2f}"
    return f"{number.normalize():f}" if number == number.to_integral() else f"{number:,.2f}"


@register.filter
def sign_class(value: object) -> str:
    """``profit`` above zero, ``loss`` below, nothing at zero or without a value."""
    number = _number(value)
    if number is None or number == 0:
        return ""
    return "profit" if number > 0 else "loss"


@register.filter
def heat(value: object) -> str:
    """An inline background for a monthly return: green or red, stronger the larger (capped at 10 %)."""
    number = _number(value)
    if number is None:
        return ""
    strength = min(abs(float(number)) / 0.10, 1.0) * 0.55 + 0.08
    colour = "34,197,94" if number >= 0 else "239,68,68"
    return f"background-color: rgba({colour},{strength:.2f})"


@register.filter
def ist(value: object) -> str:
    """An ISO 8601 instant (as a report stores it) shown in IST, ``02 Mar 2026 10:15``."""
    if not isinstance(value, str):
        return "—"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return "—"
    if moment.tzinfo is None:
        return "—"
    return moment.astimezone(IST).strftime("%d %b %Y %H:%M")


@register.filter
def as_json(value: object) -> str:
    """``value`` as compact JSON text (a sweep's grid as it was given)."""
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
