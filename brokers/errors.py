from core.errors import ApplicationError


class BrokerAccountNotFound(ApplicationError):
    """No such account, or the user may not see it (the two are indistinguishable on purpose)."""

    code = "broker_account_not_found"
    status = 404


class BrokerAccountForbidden(ApplicationError):
    """The user sees the account but may not perform the requested kind of action on it."""

    code = "broker_account_forbidden"
    status = 403


class BrokerAccountModeFixed(ApplicationError):
    """An account's broker (and so its mode, paper or live) is fixed when it is created."""

    code = "broker_account_mode_fixed"
    status = 409


class BrokerAccountInvalid(ApplicationError):
    """A new account's details are missing or malformed; ``extra["field"]`` names the field."""

    code = "broker_account_invalid"
    status = 422


class BrokerAccountDuplicate(ApplicationError):
    """The broker already has an account with this client code (on this platform, in any organisation)."""

    code = "broker_account_duplicate"
    status = 409
