from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from accounts import checks, metrics, signals  # noqa: F401  (system checks, metrics from start-up, audit receivers)
        from accounts.auth_cache import connect_signals
        from accounts.websocket import socket_session_check
        from infra.sockets import register_session_check

        connect_signals()
        register_session_check(socket_session_check)  # open sockets close when their session ends
