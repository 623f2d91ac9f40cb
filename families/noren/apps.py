from django.apps import AppConfig


class NorenConfig(AppConfig):
    """NorenOMS (Kambala): the broker family's adapter for every broker of the registry whose family is
    ``noren``; those whose sign-in is a redirect (Flattrade) get its redirect variant. A plug-in:
    nothing imports it, and its ``ready`` registers what it offers."""

    name = "families.noren"
    label = "noren"
    verbose_name = "NorenOMS (Kambala)"

    def ready(self) -> None:
        from brokers import catalogue
        from brokers.adapters import registry
        from families.noren.adapter import FlattradeAdapter, NorenAdapter

        for entry in catalogue.of_family("noren"):
            registry.register(entry.code, FlattradeAdapter if entry.login.startswith("redirect") else NorenAdapter)
