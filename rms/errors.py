from core.errors import ApplicationError


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


class KillSwitchInvalid(ApplicationError):
    """The scope is not one of global, organisation, account or user, or the target does not fit it."""

    code = "kill_switch_invalid"
    status = 422


class RiskLimitForbidden(ApplicationError):
    """Only the Owner and Admins of an organisation set its limits."""

    code = "risk_limit_forbidden"
    status = 403


class RiskLimitScopeNotFound(ApplicationError):
    """The account or member named is not one of the organisation's."""

    code = "risk_limit_scope_not_found"
    status = 404


class RiskLimitInvalid(ApplicationError):
    """A limit value was refused. ``code`` and ``message`` name the first problem; ``extra["fields"]``
    maps every refused field to its ``{"code", "message"}`` (codes: ``limit_field_unknown``,
    ``limit_not_a_number``, ``limit_not_whole``, ``limit_negative``, ``limit_too_large``,
    ``limit_too_precise``, ``exchange_unknown``, ``product_unknown``)."""

    code = "risk_limit_invalid"
    status = 422
