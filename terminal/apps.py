from django.apps import AppConfig


class TerminalConfig(AppConfig):
    name = "terminal"
    verbose_name = "Terminal"

    def ready(self) -> None:
        from infra import metrics  # noqa: F401  (exported from start-up)
