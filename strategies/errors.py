"""The strategies app's errors: one ApplicationError family, turned into 4xx by the API and the pages."""

from core.errors import ApplicationError


class StrategyError(ApplicationError):
    status = 422


class StrategyUnknown(StrategyError):
    code = "strategy_unknown"


class StrategyInvalid(StrategyError):
    """Parameters or rule JSON that fail their schema; ``extra["field"]`` names the field."""

    code = "strategy_invalid"


class StrategyForbidden(StrategyError):
    """The actor's role in the organisation does not allow this (``extra["role"]`` says which it is)."""

    code = "strategy_forbidden"
    status = 403


class StrategyNameTaken(StrategyError):
    code = "strategy_name_taken"
    status = 409


class AlgoIdForbidden(StrategyError):
    """Only the organisation's Owner and Admins manage its algo ids."""

    code = "algo_id_forbidden"
    status = 403


class AlgoIdInvalid(StrategyError):
    """A malformed algo id code, or one that is not an active algo id of the deployment's organisation."""

    code = "algo_id_invalid"


class AlgoIdTaken(StrategyError):
    code = "algo_id_taken"
    status = 409


class DeploymentInvalid(StrategyError):
    """A deployment's settings (mode, accounts, multipliers, schedule, limits) are malformed;
    ``extra["field"]`` names the field."""

    code = "deployment_invalid"


class DeploymentModeMismatch(StrategyError):
    """Paper and live never mix: a paper deployment trades only paper accounts, a live one none."""

    code = "deployment_mode_mismatch"


class DeploymentStateConflict(StrategyError):
    """The lifecycle step does not apply to the deployment's current status (or another call made it first)."""

    code = "deployment_state_conflict"
    status = 409


class DeploymentNeedsAlgoId(StrategyError):
    """A live deployment starts only with an active algo id of its organisation."""

    code = "deployment_algo_id_required"
    status = 409


class DeploymentNotFound(StrategyError):
    """No such deployment, or the user is not a member of its organisation (indistinguishable on purpose)."""

    code = "deployment_not_found"
    status = 404
