from django.apps import AppConfig


class AlertsConfig(AppConfig):
    """Price alerts: evaluated on every batch of quotes by a tick listener registered here (in the
    process that runs the feed), delivered through the outbox by Celery tasks."""

    name = "alerts"
    verbose_name = "Price alerts"

    def ready(self) -> None:
        from alerts.book import on_quotes
        from alerts.services.telegram import telegram_token_key_usage, telegram_tokens_reseal
        from core.sealing import register_resealer
        from marketdata.listeners import register_tick_listener

        register_tick_listener("price-alerts", on_quotes)
        # Key rotation (manage.py rotate_broker_keys, in brokers) re-seals the bots' tokens too.
        register_resealer(
            "telegram-bots",
            rotate=telegram_tokens_reseal,
            usage=telegram_token_key_usage,
            what="Telegram bot token(s)",
        )
