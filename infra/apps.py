from django.apps import AppConfig


class InfraConfig(AppConfig):
    name = "infra"
    verbose_name = "Platform"

    def ready(self) -> None:
        from infra import metrics  # noqa: F401  (exported from start-up)
