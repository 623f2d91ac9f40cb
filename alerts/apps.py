from django.apps import AppConfig


class AlertsConfig(AppConfig):
    """Price alerts: evaluated on every batch of quotes by a tick listener registered here (in the
    process that runs the feed), delivered through the outbox by Celery tasks."""

    name = "alerts"
    verbose_name = "Price alerts"

    def ready(self) -> None:
        from alerts.book import on_quotes
        from alerts.models import TelegramBot
        from infra.sealed_fields import register_sealed_field
        from marketdata.listeners import register_tick_listener

        register_tick_listener("price-alerts", on_quotes)
        # Key rotation (infra.key_rotation, manage.py rotate_keys) re-seals the bots' tokens too.
        register_sealed_field(
            "alerts.TelegramBot",
            "token_sealed",
            binding=lambda bot: TelegramBot.binding(bot.organisation_id),
            label="Telegram bot tokens",
        )
