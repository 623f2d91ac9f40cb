from django.apps import AppConfig


class BrokersConfig(AppConfig):
    name = "brokers"
    verbose_name = "Brokers"

    def ready(self) -> None:
        from brokers.adapters import registry
        from brokers.adapters.paper.adapter import PaperAdapter
        from marketdata.listeners import register_tick_listener

        registry.register("paper", PaperAdapter)
        # The paper exchange matches resting orders on every batch of quotes the feed publishes.
        register_tick_listener("paper-exchange", lambda quotes: registry.get_adapter("paper").on_quotes(quotes))
