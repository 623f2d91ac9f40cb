from django.apps import AppConfig


class StrategiesConfig(AppConfig):
    name = "strategies"
    verbose_name = "Strategies"

    def ready(self) -> None:
        # Registering is importing: the rule strategy, the built-ins and the webhook strategy add themselves;
        # importing metrics makes every metric exist from start-up.
        from strategies import builtins, metrics, rules, webhooks  # noqa: F401
