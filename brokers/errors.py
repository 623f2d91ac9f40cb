from core.errors import ApplicationError


class BrokerAccountNotFound(ApplicationError):
    """No such account, or the user may not see it (the two are indistinguishable on purpose)."""

    code = "broker_account_not_found"
    status = 404


class BrokerAccountForbidden(ApplicationError):
    """The user sees the account but may not perform the requested kind of action on it."""

    code = "broker_account_forbidden"
    status = 403
