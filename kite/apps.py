from django.apps import AppConfig


class KiteConfig(AppConfig):
    """Zerodha Kite Connect v3: the broker family's adapter, ticker feed, login and symbol master.
    Like the paper exchange, a plug-in: nothing imports it, and its ``ready`` registers what it offers."""

    name = "kite"
    verbose_name = "Zerodha Kite Connect"

    def ready(self) -> None:
        from brokers.adapters import registry
        from kite import metrics  # noqa: F401 - registers the symbol-master's and the ticker's metrics
        from kite.adapter import KiteAdapter

        registry.register("kite", KiteAdapter)
