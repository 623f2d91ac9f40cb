from django.apps import AppConfig


class StrategiesConfig(AppConfig):
    name = "strategies"
    verbose_name = "Strategies"

    def ready(self) -> None:
        # Registering is importing: the rule strategy and the built-ins add themselves to the registry.
        from strategies import builtins, metrics, rules  # noqa: F401  (metrics: every metric exists from start-up)
