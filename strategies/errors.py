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


# --- webhook signals (strategies.webhooks, strategies.services.signals) ------------------------------------
class WebhookError(StrategyError):
    """A refused webhook delivery; nothing was placed."""


class WebhookBodyInvalid(WebhookError):
    """The body is not a JSON object (or holds what no JSON column can store: NUL, lone surrogates)."""

    code = "webhook_body_invalid"
    status = 400


class WebhookPayloadInvalid(WebhookError):
    """The body does not fit its format's schema; ``extra["field"]`` names the field."""

    code = "webhook_payload_invalid"


class WebhookNotFound(WebhookError):
    code = "webhook_not_found"
    status = 404


class WebhookSecretInvalid(WebhookError):
    code = "webhook_secret_invalid"
    status = 403


class WebhookSourceRefused(WebhookError):
    """The sender's address is not among the deployment's allowed ones."""

    code = "webhook_source_refused"
    status = 403


class WebhookRateLimited(WebhookError):
    code = "webhook_rate_limited"
    status = 429


class WebhookSymbolUnknown(WebhookError):
    code = "webhook_symbol_unknown"


class WebhookDeploymentNotRunning(WebhookError):
    """The deployment is created, paused or stopped: a signal places nothing."""

    code = "deployment_not_running"
    status = 409


class WebhookSignalInProgress(WebhookError):
    """The first delivery of this signal id is still being handled."""

    code = "webhook_signal_in_progress"
    status = 409


# --- reaching records through the API and pages -------------------------------------------------------------
class StrategyNotFound(StrategyError):
    """No such definition in the organisation (or not one the caller may see)."""

    code = "strategy_not_found"
    status = 404


class AlgoIdNotFound(StrategyError):
    code = "algo_id_not_found"
    status = 404


class StrategyInUse(StrategyError):
    code = "strategy_in_use"
    status = 409


class BacktestInvalid(StrategyError):
    """A backtest's instruments, dates or settings are malformed or unknown; ``extra["field"]`` names the field."""

    code = "backtest_invalid"


class BacktestNoData(StrategyError):
    """No stored 1-minute candles for the backtest's instruments in its date range."""

    code = "backtest_no_data"


class BacktestForbidden(StrategyError):
    code = "backtest_forbidden"
    status = 403


class BacktestNotQueued(StrategyError):
    """The run is not queued (it is running or finished): it runs once."""

    code = "backtest_not_queued"
    status = 409


# --- backtest sweeps (strategies.services.sweeps) -----------------------------------------------------------
class SweepInvalid(StrategyError):
    """A parameter grid that is not a JSON object of non-empty lists of distinct values;
    ``extra["field"]`` names the offending grid key (``grid`` for the whole)."""

    code = "sweep_invalid"


class SweepTooLarge(StrategyError):
    """The grid's combinations exceed ``STRATEGIES_SWEEP_MAX_RUNS``; ``extra["runs"]`` and
    ``extra["max_runs"]`` say by how much. Refused before any run is created."""

    code = "sweep_too_large"


class BacktestNotFound(StrategyError):
    """No such backtest in the organisation (or not one the caller may see)."""

    code = "backtest_not_found"
    status = 404


class SweepNotFound(StrategyError):
    code = "sweep_not_found"
    status = 404
