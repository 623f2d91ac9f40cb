from django.apps import AppConfig


class MarketdataConfig(AppConfig):
    name = "marketdata"
    verbose_name = "Market data"

    def ready(self) -> None:
        from infra.health import register_check
        from marketdata import metrics  # noqa: F401 - registers the tick-path metrics for /metrics
        from marketdata.feeds.publisher import feed_status

        register_check("feed")(feed_status)
