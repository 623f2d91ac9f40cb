"""The strategies app's errors: one ApplicationError family, turned into 4xx by the API and the pages."""

from core.errors import ApplicationError


class StrategyError(ApplicationError):
    status = 422


class StrategyUnknown(StrategyError):
    code = "strategy_unknown"


class StrategyInvalid(StrategyError):
    """Parameters or rule JSON that fail their schema; ``extra["field"]`` names the field."""

    code = "strategy_invalid"
