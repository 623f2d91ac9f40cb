from core.errors import ApplicationError


class AlertError(ApplicationError):
    code = "alert_error"
    status = 400


class AlertInvalid(AlertError):
    """A refused field: ``extra["fields"]`` maps each refused field to its message; nothing was saved."""

    code = "alert_invalid"
    status = 422


class AlertNotFound(AlertError):
    code = "alert_not_found"
    status = 404


class TelegramInvalid(AlertError):
    """A Telegram token of the wrong shape, or one the Bot API refused (getMe); nothing was saved."""

    code = "telegram_invalid"
    status = 422


class TelegramForbidden(AlertError):
    code = "telegram_forbidden"
    status = 403


class DeliveryFailed(AlertError):
    """A channel could not deliver now; the task tries again later."""

    code = "delivery_failed"
    status = 502
