from django.apps import AppConfig


class UpstoxConfig(AppConfig):
    """Upstox: registers its adapter for every broker of the registry whose API is the Upstox family.
    A plug-in: nothing imports it."""

    name = "families.upstox"
    label = "upstox"
    verbose_name = "Upstox API"

    def ready(self) -> None:
        from brokers import catalogue
        from brokers.adapters import registry
        from families.upstox.adapter import UpstoxAdapter

        for entry in catalogue.of_family(UpstoxAdapter.code):
            registry.register(entry.code, UpstoxAdapter)
