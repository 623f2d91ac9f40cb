from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from accounts import metrics, signals  # noqa: F401  (metrics exported from start-up; audit receivers)
        from accounts.auth_cache import connect_signals

        connect_signals()
