"""Price alerts: a condition on one instrument's price, what fires when it holds, and how the trader hears.

``Alert`` is the condition and what to do; ``AlertFiring`` one time it held (with the trigger order's
result); ``AlertNotification`` the outbox, one row per (firing, channel), delivered once by a task;
``TelegramBot`` an organisation's Telegram bot token, sealed like broker secrets.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Condition(models.TextChoices):
    LTP_ABOVE = "ltp_above", "LTP at or above"
    LTP_BELOW = "ltp_below", "LTP at or below"
    CHANGE_ABOVE = "change_above", "% change at or above"
    CHANGE_BELOW = "change_below", "% change at or below"
    CROSS_UP = "cross_up", "Crosses above"
    CROSS_DOWN = "cross_down", "Crosses below"
    MA_CROSS_UP = "ma_cross_up", "Crosses above moving average"
    MA_CROSS_DOWN = "ma_cross_down", "Crosses below moving average"


class Average(models.TextChoices):
    SMA = "sma", "SMA"
    EMA = "ema", "EMA"


class Repeat(models.TextChoices):
    ONCE = "once", "Once"
    REARM = "rearm", "Re-arm after a cooldown"


class AlertState(models.TextChoices):
    ACTIVE = "active", "Active"
    FIRED = "fired", "Fired"
    DISABLED = "disabled", "Disabled"


class Alert(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alerts")
    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.CASCADE, related_name="alerts")
    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.PROTECT, related_name="+")
    condition = models.CharField(max_length=16, choices=Condition.choices)
    # A price for the LTP and crossing conditions, a percentage for the change conditions; unused by
    # the moving-average crossings.
    level = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    average = models.CharField(max_length=4, choices=Average.choices, blank=True)
    average_minutes = models.PositiveSmallIntegerField(null=True, blank=True)
    repeat = models.CharField(max_length=8, choices=Repeat.choices, default=Repeat.ONCE)
    cooldown_seconds = models.PositiveIntegerField(default=300)
    note = models.CharField(max_length=200, blank=True)
    notify_email = models.BooleanField(default=False)
    notify_telegram = models.BooleanField(default=False)
    telegram_chat_id = models.CharField(max_length=64, blank=True)  # blank: the organisation's chat
    # The alert trigger order, placed when it fires (no account: no order).
    account = models.ForeignKey(
        "brokers.BrokerAccount", on_delete=models.CASCADE, null=True, blank=True, related_name="+"
    )
    order_side = models.CharField(max_length=4, blank=True)
    order_lots = models.PositiveIntegerField(null=True, blank=True)
    order_type = models.CharField(max_length=8, blank=True)
    order_product = models.CharField(max_length=8, blank=True)
    order_price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    state = models.CharField(max_length=8, choices=AlertState.choices, default=AlertState.ACTIVE)
    fired_count = models.PositiveIntegerField(default=0)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["state", "instrument"], name="alert_state_instrument")]
        ordering = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return f"alert {self.pk} {self.condition} {self.level}"

    @property
    def has_order(self) -> bool:
        return self.account_id is not None


class OrderResult(models.TextChoices):
    NONE = "", "No order"
    PENDING = "pending", "Placing"
    PLACED = "placed", "Placed"
    REJECTED = "rejected", "Rejected"


class AlertFiring(models.Model):
    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="firings")
    fired_at = models.DateTimeField()
    ltp = models.DecimalField(max_digits=14, decimal_places=4)
    message = models.CharField(max_length=300)
    order_result = models.CharField(max_length=8, choices=OrderResult.choices, blank=True, default="")
    order = models.ForeignKey("orders.Order", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    order_message = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-fired_at", "-pk"]

    def __str__(self) -> str:
        return f"firing {self.pk} of alert {self.alert_id}"


class Channel(models.TextChoices):
    PAGE = "page", "In the page"
    EMAIL = "email", "E-mail"
    TELEGRAM = "telegram", "Telegram"


class Delivery(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    FAILED = "failed", "Failed"


class AlertNotification(models.Model):
    """The outbox: one notification of one firing on one channel, delivered once by ``alerts.tasks``."""

    firing = models.ForeignKey(AlertFiring, on_delete=models.CASCADE, related_name="notifications")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    status = models.CharField(max_length=8, choices=Delivery.choices, default=Delivery.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["firing", "channel"], name="alert_notification_once_per_channel"),
        ]

    def __str__(self) -> str:
        return f"{self.channel} notification of firing {self.firing_id}: {self.status}"


class TelegramBot(models.Model):
    """An organisation's Telegram bot: its token sealed by core.sealing and bound to this row."""

    organisation = models.OneToOneField("accounts.Organisation", on_delete=models.CASCADE, related_name="+")
    token_sealed = models.TextField()
    bot_username = models.CharField(max_length=64)
    chat_id = models.CharField(max_length=64, blank=True)  # the default chat alerts go to
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"@{self.bot_username} of organisation {self.organisation_id}"

    @staticmethod
    def binding(organisation_id: int) -> bytes:
        """The associated data that ties a sealed token to its organisation's row."""
        return f"telegrambot|{organisation_id}|token".encode()
