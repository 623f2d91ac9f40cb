from django.apps import AppConfig


class AngelConfig(AppConfig):
    """Angel One SmartAPI: registers ``AngelAdapter`` for every broker of the registry whose family is
    "angel" (Angel One). A plug-in: nothing imports it."""

    name = "families.angel"
    label = "angel"
    verbose_name = "Angel One SmartAPI"

    def ready(self) -> None:
        from brokers import catalogue
        from brokers.adapters import registry
        from families.angel.adapter import AngelAdapter

        for entry in catalogue.of_family(AngelAdapter.code):
            registry.register(entry.code, AngelAdapter)
