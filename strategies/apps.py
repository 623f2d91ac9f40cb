from django.apps import AppConfig


class StrategiesConfig(AppConfig):
    name = "strategies"
    verbose_name = "Strategies"

    def ready(self) -> None:
        # Registering is importing: the rule strategy adds itself to the registry.
        from strategies import rules  # noqa: F401
