from django.apps import AppConfig


class FyersConfig(AppConfig):
    """Fyers API v3: registers the family's adapter for every broker of the registry whose API is
    Fyers' (``brokers.catalogue.of_family("fyers")``). A plug-in: nothing imports it."""

    name = "families.fyers"
    label = "fyers"
    verbose_name = "Fyers API v3"

    def ready(self) -> None:
        from brokers import catalogue
        from brokers.adapters import registry
        from families.fyers.adapter import FyersAdapter

        for entry in catalogue.of_family("fyers"):
            registry.register(entry.code, FyersAdapter)
