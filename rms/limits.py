"""Effective limits per (account, user, strategy), cached in process with a version stamp.

The pre-trade check must cost microseconds, so limits are read from the database once per key and
kept in this process. Saving or deleting a ``RiskLimit`` bumps a version number in the shared cache
(Redis in the full stack); every process compares its version with the shared one at most every
``RECHECK_SECONDS`` and drops its copies when it changed. The process that made the change drops them
at once.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db.models import Q

logger = logging.getLogger(__name__)

VERSION_KEY = "rms:limits:version"
RECHECK_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Limits:
    max_order_quantity: int | None = None
    max_order_value: Decimal | None = None
    max_open_orders: int | None = None
    max_daily_loss: Decimal | None = None
    max_orders_per_second: int = 10
    max_ltp_deviation_pct: Decimal | None = None
    allowed_exchanges: frozenset[str] | None = None
    allowed_products: frozenset[str] | None = None


_cache: dict[tuple[int, int | None, str], Limits] = {}
_lock = threading.Lock()
_state = {"version": None, "checked_at": 0.0}


def limits_for(*, account_id: int, organisation_id: int, user_id: int | None, strategy: str = "") -> Limits:
    """Return the effective limits for an order by ``user_id`` on the account, from ``strategy`` if any."""
    now = time.monotonic()
    if now - _state["checked_at"] > RECHECK_SECONDS:
        _sync(now)
    key = (account_id, user_id, strategy)
    limits = _cache.get(key)
    if limits is None:
        limits = _load(account_id=account_id, organisation_id=organisation_id, user_id=user_id, strategy=strategy)
        with _lock:
            _cache[key] = limits
    return limits


def invalidate() -> None:
    """Drop this process's copies and tell the others (called when a RiskLimit changes)."""
    with _lock:
        _cache.clear()
    try:
        try:
            cache.incr(VERSION_KEY)
        except ValueError:
            cache.set(VERSION_KEY, 1, timeout=None)
    except Exception:  # the cache being down must not stop an admin from saving limits
        logger.warning("could not publish the RMS limits version", exc_info=True)


def _sync(now: float) -> None:
    try:
        version = cache.get(VERSION_KEY, 0)
    except Exception:
        logger.warning("could not read the RMS limits version; reloading limits", exc_info=True)
        version = object()  # unknown: treat as changed
    with _lock:
        if version != _state["version"]:
            _cache.clear()
            _state["version"] = version
        _state["checked_at"] = now


def strictest(rows) -> dict:
    """Combine RiskLimit rows field by field, the strictest value winning: the smallest number, the
    intersection of allowed exchanges and products. Return {field: value or None (no limit)}."""

    def smallest(field: str):
        values = [getattr(r, field) for r in rows if getattr(r, field) is not None]
        return min(values) if values else None

    def allowed(field: str) -> frozenset[str] | None:
        result: frozenset[str] | None = None
        for row in rows:
            value = getattr(row, field)
            if value:
                items = frozenset(v.strip().upper() for v in value.split(",") if v.strip())
                result = items if result is None else result & items
        return result

    return {
        "max_order_quantity": smallest("max_order_quantity"),
        "max_order_value": smallest("max_order_value"),
        "max_open_orders": smallest("max_open_orders"),
        "max_daily_loss": smallest("max_daily_loss"),
        "max_orders_per_second": smallest("max_orders_per_second"),
        "max_ltp_deviation_pct": smallest("max_ltp_deviation_pct"),
        "allowed_exchanges": allowed("allowed_exchanges"),
        "allowed_products": allowed("allowed_products"),
    }


def _load(*, account_id: int, organisation_id: int, user_id: int | None, strategy: str) -> Limits:
    """Combine every applicable RiskLimit row: the strictest value of each field wins."""
    from rms.models import RiskLimit

    scope = (
        Q(organisation__isnull=True, account__isnull=True, user__isnull=True, strategy="")
        | Q(organisation_id=organisation_id, user__isnull=True)
        | Q(account_id=account_id)
    )
    if user_id is not None:
        # The user's own limits everywhere, and those their organisation set for them; never the limits
        # another organisation set for the same user.
        scope |= Q(user_id=user_id) & (Q(organisation__isnull=True) | Q(organisation_id=organisation_id))
    if strategy:
        scope |= Q(strategy=strategy, organisation__isnull=True, account__isnull=True, user__isnull=True)
    values = strictest(list(RiskLimit.objects.filter(scope)))
    ops = values.pop("max_orders_per_second")
    # "is None", not "or": a limit of 0 is a limit (no orders), not a missing one.
    return Limits(**values, max_orders_per_second=settings.RMS_DEFAULT_OPS_LIMIT if ops is None else ops)
