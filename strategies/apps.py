from django.apps import AppConfig


class StrategiesConfig(AppConfig):
    name = "strategies"
    verbose_name = "Strategies"

    def ready(self) -> None:
        # Registering is importing: the rule strategy, the built-ins and the webhook strategy add themselves.
        from strategies import builtins, rules, webhooks  # noqa: F401
