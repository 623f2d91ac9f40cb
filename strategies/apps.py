from django.apps import AppConfig


class StrategiesConfig(AppConfig):
    name = "strategies"
    verbose_name = "Strategies"

    def ready(self) -> None:
        # Registering is importing: the rule strategy and the webhook strategy add themselves to the registry.
        from strategies import rules, webhooks  # noqa: F401
