from django.apps import AppConfig


class MarketdataConfig(AppConfig):
    name = "marketdata"
    verbose_name = "Market data"

    def ready(self) -> None:
        from infra.health import register_check
        from marketdata import metrics  # noqa: F401 - registers the tick-path metrics for /metrics
        from marketdata.feeds.publisher import feed_status
        from marketdata.feeds.runner import build_replay, build_simulator
        from marketdata.feeds.sources import register_feed_source

        register_check("feed")(feed_status)
        # run_feed's sources; a broker plug-in registers its ticker the same way from its own ready.
        register_feed_source("sim", build_simulator, help="the simulator")
        register_feed_source("replay", build_replay, needs_file=True, help="recorded ticks or candles from FILE")
