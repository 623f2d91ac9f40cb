"""Each notification of a firing is delivered once: an outbox row per (firing, channel), claimed by a
conditional UPDATE, retried with backoff while its channel fails, never sent again once sent."""

from decimal import Decimal

import pytest
from django.core import mail
from django.db import IntegrityError, transaction

from alerts import tasks
from alerts.models import AlertNotification, TelegramBot
from alerts.services import alert_fire, notification_deliver
from core import sealing
from tests.alerts.helpers import make_alert
from tests.alerts.telegram_server import VALID_TOKEN

pytestmark = pytest.mark.django_db


def _bot(world, chat_id="-100200300"):
    bot = TelegramBot(organisation=world.org, bot_username="acme_alerts_bot", chat_id=chat_id)
    bot.token_sealed = sealing.encrypt(VALID_TOKEN.encode(), associated_data=TelegramBot.binding(world.org.pk))
    bot.save()
    return bot


def _fired(world, **values):
    world.trader.email = "trader@example.test"
    world.trader.save()
    alert = make_alert(world.trader, world.equity, "ltp_above", "1000", **values)
    return alert_fire(alert_id=alert.pk, ltp=Decimal("1001"))


def test_one_outbox_row_per_channel_and_a_second_is_refused(world):
    _bot(world)
    firing = _fired(world, notify_email=True, notify_telegram=True)
    assert sorted(firing.notifications.values_list("channel", flat=True)) == ["email", "page", "telegram"]
    with pytest.raises(IntegrityError), transaction.atomic():
        AlertNotification.objects.create(firing=firing, channel="email")


def test_an_email_is_sent_once_however_often_its_task_runs(world):
    firing = _fired(world, notify_email=True)
    row = firing.notifications.get(channel="email")
    assert notification_deliver(notification_id=row.pk) == "sent"
    assert notification_deliver(notification_id=row.pk) == "sent"
    tasks.deliver_notification.apply(args=[row.pk])
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["trader@example.test"]
    assert "NSE:RELIANCE" in mail.outbox[0].subject


def test_a_failing_telegram_delivery_is_retried_and_then_sent_once(world, bot_api):
    _bot(world)
    firing = _fired(world, notify_telegram=True)
    row = firing.notifications.get(channel="telegram")
    bot_api.fail_next("sendMessage", "server_error")
    # Run in this process, Celery retries at once what it would retry after the backoff.
    result = tasks.deliver_notification.apply(args=[row.pk])
    assert result.get() == "sent"
    assert notification_deliver(notification_id=row.pk) == "sent"
    tasks.deliver_notification.apply(args=[row.pk])
    sent = bot_api.sent()
    assert len(sent) == 2  # the refused try and the delivered one, nothing after
    assert sent[-1].body["chat_id"] == "-100200300" and "NSE:RELIANCE" in sent[-1].body["text"]
    row.refresh_from_db()
    assert row.status == "sent" and row.attempts == 2 and row.last_error == ""


def test_a_refused_try_leaves_the_row_pending_with_its_reason(world, bot_api):
    _bot(world)
    row = _fired(world, notify_telegram=True).notifications.get(channel="telegram")
    bot_api.fail_next("sendMessage", "server_error")
    with pytest.raises(Exception, match="Telegram refused: 502"):
        notification_deliver(notification_id=row.pk)
    row.refresh_from_db()
    assert row.status == "pending" and row.attempts == 1 and "502" in row.last_error


def test_a_channel_that_keeps_failing_ends_failed_after_the_last_attempt(world, bot_api):
    from alerts.services.outbox import MAX_ATTEMPTS

    _bot(world)
    row = _fired(world, notify_telegram=True).notifications.get(channel="telegram")
    bot_api.fail_next("sendMessage", "rate_limited", times=MAX_ATTEMPTS)
    for _ in range(MAX_ATTEMPTS - 1):
        with pytest.raises(Exception, match="Telegram refused: 429"):
            notification_deliver(notification_id=row.pk)
    assert notification_deliver(notification_id=row.pk) == "failed"
    assert notification_deliver(notification_id=row.pk) == "failed"
    assert len(bot_api.sent()) == MAX_ATTEMPTS


def test_a_claim_held_by_another_worker_is_not_sent_twice(world):
    firing = _fired(world, notify_email=True)
    row = firing.notifications.get(channel="email")
    from django.utils import timezone

    AlertNotification.objects.filter(pk=row.pk).update(status="sending", claimed_at=timezone.now())
    assert notification_deliver(notification_id=row.pk) == "sending"
    assert mail.outbox == []


def test_the_page_notification_is_the_toast_and_the_rows_pushed_to_the_owner(world, monkeypatch):
    pushed = []
    monkeypatch.setattr("alerts.services.outbox.push_to_user", lambda user_id, html: pushed.append((user_id, html)))
    row = _fired(world).notifications.get(channel="page")
    assert notification_deliver(notification_id=row.pk) == "sent"
    assert notification_deliver(notification_id=row.pk) == "sent"
    assert [user_id for user_id, _ in pushed] == [world.trader.pk, world.trader.pk]
    rows, toast = pushed[0][1], pushed[1][1]
    assert f'id="firing-{row.firing_id}"' in rows and f'id="alert-{row.firing.alert_id}"' in rows
    assert toast.startswith(f'<div id="alert-toast-{row.firing_id}"') and 'hx-swap-oob="true"' in toast


def test_the_sweep_queues_again_what_was_left_pending(world, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from alerts.models import AlertFiring

    firing = _fired(world, notify_email=True)
    AlertFiring.objects.filter(pk=firing.pk).update(fired_at=timezone.now() - timedelta(minutes=5))
    queued = []
    monkeypatch.setattr(tasks.deliver_notification, "delay", lambda pk: queued.append(pk))
    assert tasks.sweep_outbox() == 2
    assert sorted(queued) == sorted(firing.notifications.values_list("pk", flat=True))
