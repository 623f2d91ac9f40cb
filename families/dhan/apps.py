from django.apps import AppConfig


class DhanConfig(AppConfig):
    """DhanHQ v2: registers the family's adapter for every broker of the registry whose API is Dhan's.
    A plug-in: nothing imports it, and leaving it out of INSTALLED_APPS removes the family."""

    name = "families.dhan"
    label = "dhan"
    verbose_name = "DhanHQ v2"

    def ready(self) -> None:
        from brokers import catalogue
        from brokers.adapters import registry
        from families.dhan.adapter import DhanAdapter

        for entry in catalogue.of_family(DhanAdapter.code):
            registry.register(entry.code, DhanAdapter)
