from terminal.errors import ApplicationError


class RiskRejected(ApplicationError):
    """The pre-trade check refused the order; ``code`` names the rule and ``extra`` the numbers."""

    code = "risk_rejected"
    status = 422

    def __init__(self, rule: str, message: str, *, status: int = 422, extra: dict | None = None) -> None:
        super().__init__(message, code=rule, extra={"rule": rule, **(extra or {})})
        self.rule = rule
        self.status = status


class KillSwitchForbidden(ApplicationError):
    code = "kill_switch_forbidden"
    status = 403
