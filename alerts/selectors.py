"""Reads: a user's alerts and firings, the active alerts a tick listener holds, candle closes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.db.models import QuerySet
from django.utils import timezone

from alerts.errors import AlertNotFound
from alerts.models import Alert, AlertFiring, AlertState, TelegramBot
from marketdata.models import Candle

LIST_LIMIT = 50


def alert_list_for_user(*, user) -> QuerySet[Alert]:
    """The user's alerts, newest first, with their instrument loaded."""
    return Alert.objects.filter(user=user).select_related("instrument").order_by("-created_at", "-pk")


def alert_get_for_user(*, user, alert_id: int) -> Alert:
    """The user's alert; raises AlertNotFound for another user's or a missing one."""
    alert = alert_list_for_user(user=user).filter(pk=alert_id).first()
    if alert is None:
        raise AlertNotFound(f"Alert {alert_id} was not found.", extra={"alert_id": alert_id})
    return alert


def firing_list_for_user(*, user, limit: int = 20) -> list[AlertFiring]:
    """The user's latest firings, with their alert and instrument loaded."""
    return list(
        AlertFiring.objects.filter(alert__user=user)
        .select_related("alert", "alert__instrument")
        .order_by("-fired_at", "-pk")[:limit]
    )


def active_alert_rows() -> list[dict]:
    """The fields a tick listener needs of every active alert (one query)."""
    return [
        dict(row)
        for row in Alert.objects.filter(state=AlertState.ACTIVE).values(
            "id",
            "instrument_id",
            "condition",
            "level",
            "average",
            "average_minutes",
            "repeat",
            "cooldown_seconds",
            "last_fired_at",
        )
    ]


def recent_closes(*, instrument_id: int, minutes: int) -> list[Decimal]:
    """The closes of the instrument's last ``minutes`` stored 1-minute bars, oldest first (bars of the
    last day only: an average over a weekend gap would mean little)."""
    since = timezone.now() - timedelta(days=1)
    closes = (
        Candle.objects.filter(instrument_id=instrument_id, ts__gte=since)
        .order_by("-ts")
        .values_list("close", flat=True)[:minutes]
    )
    return list(reversed(list(closes)))


def telegram_bot_for(*, organisation_id: int) -> TelegramBot | None:
    return TelegramBot.objects.filter(organisation_id=organisation_id).first()
