from django.apps import AppConfig


class AlertsConfig(AppConfig):
    """Price alerts: evaluated on every batch of quotes by a tick listener registered here (in the
    process that runs the feed), delivered through the outbox by Celery tasks."""

    name = "alerts"
    verbose_name = "Price alerts"

    def ready(self) -> None:
        from alerts.book import on_quotes
        from marketdata.listeners import register_tick_listener

        register_tick_listener("price-alerts", on_quotes)
