from django.apps import AppConfig


class XtsConfig(AppConfig):
    """Symphony Fintech's XTS: the broker family's adapter for every registry broker whose family is "xts".
    A plug-in like the paper exchange and Kite: nothing imports it; its ``ready`` registers the adapter."""

    name = "families.xts"
    label = "xts"
    verbose_name = "Symphony XTS"

    def ready(self) -> None:
        from brokers import catalogue
        from brokers.adapters import registry
        from families.xts.adapter import XtsAdapter

        for entry in catalogue.of_family("xts"):
            registry.register(entry.code, XtsAdapter)
