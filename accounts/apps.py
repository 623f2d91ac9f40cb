from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from accounts import checks, metrics, signals  # noqa: F401  (system checks, metrics from start-up, audit receivers)
        from accounts.auth_cache import connect_signals
        from accounts.websocket import socket_session_check
        from infra.sealed_fields import register_sealed_field
        from infra.sockets import register_session_check

        # Seeds in clear (left by a release before the seal) are no sealed text: rotation leaves them alone.
        register_sealed_field(
            "accounts.SealedTOTPDevice", "key", binding=lambda device: device.key_binding, label="TOTP seeds"
        )

        connect_signals()
        register_session_check(socket_session_check)  # open sockets close when their session ends
