"""The alerts' writes: ``alerts`` (create, change, delete), ``firing`` (an alert firing once across
processes), ``outbox`` (each notification delivered once), ``orders`` (the alert trigger order),
``telegram`` (an organisation's bot). Re-exported here."""

from alerts.services.alerts import FIELDS as FIELDS_OF_FORM
from alerts.services.alerts import alert_clean, alert_create, alert_delete, alert_update
from alerts.services.firing import alert_fire, describe
from alerts.services.orders import alert_order_place
from alerts.services.outbox import notification_deliver, notifications_due, push_firing, render_firing, render_toast
from alerts.services.telegram import telegram_bot_remove, telegram_bot_set

__all__ = [
    "FIELDS_OF_FORM",
    "alert_clean",
    "alert_create",
    "alert_delete",
    "alert_fire",
    "alert_order_place",
    "alert_update",
    "describe",
    "notification_deliver",
    "notifications_due",
    "push_firing",
    "render_firing",
    "render_toast",
    "telegram_bot_remove",
    "telegram_bot_set",
]
