"""Firing an alert: one conditional UPDATE decides which process fires it; the firing and its outbox
rows are written in the same transaction; the deliveries and the trigger order are queued after
commit (by task name: ``alerts.tasks`` calls these services, never the other way)."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from celery import current_app
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from alerts.book import invalidate
from alerts.models import Alert, AlertFiring, AlertNotification, AlertState, Channel, Condition, OrderResult, Repeat

logger = logging.getLogger(__name__)


def describe(alert: Alert, ltp: Decimal) -> str:
    """The firing's one-line message, as every channel says it."""
    symbol = f"{alert.instrument.exchange}:{alert.instrument.tradingsymbol}"
    label = str(Condition(alert.condition).label)
    what = label if label.startswith("LTP") else label[0].lower() + label[1:]
    if alert.condition in (Condition.MA_CROSS_UP, Condition.MA_CROSS_DOWN):
        what = "crosses above" if alert.condition == Condition.MA_CROSS_UP else "crosses below"
        target = f"its {alert.average_minutes}-minute {alert.average.upper()}"
    elif alert.condition in (Condition.CHANGE_ABOVE, Condition.CHANGE_BELOW):
        target = f"{alert.level.normalize():f}%" if alert.level is not None else ""
    else:
        target = f"{alert.level.normalize():f}" if alert.level is not None else ""
    text = f"{symbol} {what} {target}: LTP {ltp.normalize():f}"
    if alert.note:
        text += f" ({alert.note})"
    return text[:300]


def alert_fire(*, alert_id: int, ltp: Decimal) -> AlertFiring | None:
    """Fire the alert at ``ltp`` if it is still armed; return its firing, or None when it was not
    (fired by another process, disabled, deleted, or a re-arming alert still in its cooldown)."""
    now = timezone.now()
    with transaction.atomic():
        alert = Alert.objects.select_related("instrument").filter(pk=alert_id, state=AlertState.ACTIVE).first()
        if alert is None:
            return None
        armed = Alert.objects.filter(pk=alert_id, state=AlertState.ACTIVE)
        if alert.repeat == Repeat.REARM:
            armed = armed.filter(
                Q(last_fired_at__isnull=True) | Q(last_fired_at__lte=now - timedelta(seconds=alert.cooldown_seconds))
            )
        next_state = AlertState.FIRED if alert.repeat == Repeat.ONCE else AlertState.ACTIVE
        if armed.update(state=next_state, last_fired_at=now, fired_count=F("fired_count") + 1) != 1:
            return None
        firing = AlertFiring.objects.create(
            alert=alert,
            fired_at=now,
            ltp=ltp,
            message=describe(alert, ltp),
            order_result=OrderResult.PENDING if alert.has_order else OrderResult.NONE,
        )
        channels = [Channel.PAGE]
        if alert.notify_email:
            channels.append(Channel.EMAIL)
        if alert.notify_telegram:
            channels.append(Channel.TELEGRAM)
        notifications = AlertNotification.objects.bulk_create(
            AlertNotification(firing=firing, channel=channel) for channel in channels
        )
        ids = [n.pk for n in notifications]
        if not all(ids):  # a backend that does not return ids from a bulk insert
            ids = list(AlertNotification.objects.filter(firing=firing).values_list("pk", flat=True))
        # The order first: its result is part of what the page shows.
        transaction.on_commit(lambda: _queue(firing.pk if alert.has_order else None, ids))
    invalidate()
    return firing


def _queue(firing_id: int | None, notification_ids: list[int]) -> None:
    """Queue the trigger order and the deliveries (the outbox sweep finds any this misses)."""
    try:
        if firing_id is not None:
            current_app.send_task("alerts.tasks.place_alert_order", args=[firing_id])
        for notification_id in notification_ids:
            current_app.send_task("alerts.tasks.deliver_notification", args=[notification_id])
    except Exception:
        logger.warning("could not queue the deliveries of an alert firing", exc_info=True)
