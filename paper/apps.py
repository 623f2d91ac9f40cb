from django.apps import AppConfig


class PaperConfig(AppConfig):
    """The paper exchange, a broker like any other: it registers its adapter under the broker code
    ``paper`` and its matching as a tick listener. Nothing imports this app; removing it from
    INSTALLED_APPS removes the broker."""

    name = "paper"
    verbose_name = "Paper exchange"

    def ready(self) -> None:
        from brokers.adapters import registry
        from marketdata.listeners import register_tick_listener
        from paper.adapter import PaperAdapter, match_quotes

        registry.register("paper", PaperAdapter)
        # The paper exchange matches resting orders on every batch of quotes the feed publishes.
        register_tick_listener("paper-exchange", match_quotes)
