from django.apps import AppConfig


class MarketdataConfig(AppConfig):
    name = "marketdata"
    verbose_name = "Market data"

    def ready(self) -> None:
        from marketdata import metrics  # noqa: F401 - registers the tick-path metrics for /metrics
        from marketdata.feeds.publisher import feed_status
        from terminal.health import register_check

        register_check("feed")(feed_status)
