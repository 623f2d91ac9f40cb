"""Delivering the outbox: each notification claimed by a conditional UPDATE, sent on its channel, and
marked sent, so a task run twice (acknowledged late, retried, or queued again by the sweep) sends it
once. A claim left by a worker that died mid-send is taken over after ``CLAIM_SECONDS``."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.utils import timezone

from alerts.errors import DeliveryFailed
from alerts.models import AlertFiring, AlertNotification, Channel, Delivery, TelegramBot
from alerts.telegram import TelegramClient
from core import sealing
from infra.push import push_to_user

logger = logging.getLogger(__name__)

CLAIM_SECONDS = 120  # longer than one send may take (the Telegram client's timeouts, SMTP's)
MAX_ATTEMPTS = 8


def notification_deliver(*, notification_id: int) -> str:
    """Deliver one notification; return ``sent``, or what it already was (``sent``, ``failed``,
    ``sending`` by another worker, ``missing``).

    Raises DeliveryFailed when the channel could not deliver now and a later try may (the row is
    pending again, its attempt counted); after ``MAX_ATTEMPTS`` the row is ``failed`` and nothing raises.
    """
    now = timezone.now()
    claimable = Q(status=Delivery.PENDING) | Q(
        status=Delivery.SENDING, claimed_at__lt=now - timedelta(seconds=CLAIM_SECONDS)
    )
    claimed = AlertNotification.objects.filter(claimable, pk=notification_id).update(
        status=Delivery.SENDING, claimed_at=now, attempts=F("attempts") + 1
    )
    if not claimed:
        row = AlertNotification.objects.filter(pk=notification_id).values_list("status", flat=True).first()
        return row or "missing"
    notification = AlertNotification.objects.select_related(
        "firing__alert__instrument", "firing__alert__user", "firing__order"
    ).get(pk=notification_id)
    try:
        _send(notification)
    except DeliveryFailed as error:
        final = notification.attempts >= MAX_ATTEMPTS
        AlertNotification.objects.filter(pk=notification_id, status=Delivery.SENDING).update(
            status=Delivery.FAILED if final else Delivery.PENDING, last_error=error.message[:300]
        )
        if final:
            logger.warning("alert notification %s failed for good: %s", notification_id, error.message)
            return Delivery.FAILED
        raise
    AlertNotification.objects.filter(pk=notification_id, status=Delivery.SENDING).update(
        status=Delivery.SENT, sent_at=timezone.now(), last_error=""
    )
    return Delivery.SENT


def notifications_due(*, older_than_seconds: int = 60) -> list[int]:
    """The notifications still to deliver whose task may have been lost (the sweep re-queues them)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    return list(
        AlertNotification.objects.filter(
            Q(status=Delivery.PENDING, firing__fired_at__lt=cutoff)
            | Q(status=Delivery.SENDING, claimed_at__lt=timezone.now() - timedelta(seconds=CLAIM_SECONDS))
        ).values_list("pk", flat=True)[:500]
    )


def _send(notification: AlertNotification) -> None:
    firing = notification.firing
    if notification.channel == Channel.PAGE:
        push_firing(firing, toast=True)
    elif notification.channel == Channel.EMAIL:
        _email(firing)
    elif notification.channel == Channel.TELEGRAM:
        _telegram(firing)


def render_firing(firing: AlertFiring) -> str:
    """The oob rows a firing changes on the user's pages: its row in the alerts panel and the alert's."""
    context = {"firing": firing, "alert": firing.alert, "oob": True}
    # Stripped: the page applies a socket message only when it starts with a tag.
    rows = render_to_string("alerts/_panel.html#firing-row", context) + render_to_string(
        "alerts/_panel.html#alert-row", context
    )
    return rows.strip()


def render_toast(firing: AlertFiring) -> str:
    return render_to_string("alerts/_panel.html#toast", {"firing": firing, "oob": True}).strip()


def push_firing(firing: AlertFiring, *, toast: bool) -> None:
    """Send the firing's rows (and, with ``toast``, a toast) to the alert owner's open pages (none
    open: nothing to do). Two messages: table rows and a div do not parse as one fragment."""
    try:
        push_to_user(firing.alert.user_id, render_firing(firing))
        if toast:
            push_to_user(firing.alert.user_id, render_toast(firing))
    except Exception as exc:
        raise DeliveryFailed(f"could not push to the page: {type(exc).__name__}") from exc


def _email(firing: AlertFiring) -> None:
    user = firing.alert.user
    if not user.email:
        raise DeliveryFailed("the user has no e-mail address")
    body = firing.message
    if firing.order_message:
        body += f"\n\nAlert trigger order: {firing.order_message}"
    try:
        send_mail(f"Alert: {firing.message[:120]}", body, None, [user.email], fail_silently=False)
    except Exception as exc:  # SMTP refusals and network errors alike: try again later
        raise DeliveryFailed(f"e-mail not sent: {type(exc).__name__}: {str(exc)[:200]}") from exc


def _telegram(firing: AlertFiring) -> None:
    alert = firing.alert
    bot = TelegramBot.objects.filter(organisation_id=alert.organisation_id).first()
    if bot is None:
        raise DeliveryFailed("the organisation has no Telegram bot")
    chat_id = alert.telegram_chat_id or bot.chat_id
    token = sealing.decrypt(bot.token_sealed, associated_data=TelegramBot.binding(bot.organisation_id)).decode()
    answer = TelegramClient(token, base_url=settings.ALERTS_TELEGRAM_API_URL).send_message(
        chat_id=chat_id, text=f"🔔 {firing.message}"
    )
    if not answer.ok:
        raise DeliveryFailed(f"Telegram refused: {answer.error_code} {answer.description}")
