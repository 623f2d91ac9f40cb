"""Strategy definitions, algo ids, deployments across accounts, their intents, webhook signals and logs.

A deployment's orders are ordinary orders (``orders.Order``) with ``source`` strategy or webhook, the
deployment's algo id and ``strategy = Deployment.order_key`` (``dep-<id>``): its positions are
summed from its own trades, apart from the account's manual trades on the same instrument.
"""

from __future__ import annotations

import secrets
from datetime import time

from django.conf import settings
from django.db import models
from django.db.models import Q


def new_webhook_token() -> str:
    """The public part of a deployment's webhook URL: 32 URL-safe characters (192 random bits)."""
    return secrets.token_urlsafe(24)


class AlgoId(models.Model):
    """An exchange-approved algo id of an organisation (SEBI's retail-algo framework). Managed by its
    Owner and Admins; every order of a deployment carries its algo id."""

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="algo_ids")
    code = models.CharField(max_length=40, help_text="The id the exchange approved, as the broker expects it.")
    description = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organisation", "code"], name="algoid_unique_per_organisation")]

    def __str__(self) -> str:
        return self.code


class StrategyDefinition(models.Model):
    """A named strategy of an organisation: a registered kind (``strategies.registry``) and its
    parameters, validated by the kind's schema (for the rule strategy, the rules themselves)."""

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="strategies")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=64, help_text="The registered strategy class, e.g. 'rule' or 'ema_crossover'.")
    params = models.JSONField(default=dict)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organisation", "name"], name="strategy_unique_name")]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class Deployment(models.Model):
    """One strategy running (or ready to run) on one or more accounts of its organisation."""

    class Mode(models.TextChoices):
        PAPER = "paper", "Paper"
        LIVE = "live", "Live"

    class Status(models.TextChoices):
        CREATED = "created", "Created"
        RUNNING = "running", "Running"
        PAUSED = "paused", "Paused"
        STOPPED = "stopped", "Stopped"

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="deployments")
    definition = models.ForeignKey(StrategyDefinition, on_delete=models.PROTECT, related_name="deployments")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=64, help_text="The strategy class, copied from the definition at deploy.")
    params = models.JSONField(default=dict, help_text="The parameters it runs with, validated at deploy.")
    mode = models.CharField(max_length=5, choices=Mode.choices)
    algo_id = models.ForeignKey(AlgoId, null=True, blank=True, on_delete=models.PROTECT, related_name="deployments")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.CREATED)
    status_reason = models.CharField(max_length=300, blank=True)

    # Schedule, in IST on market days (selectors.is_market_day, by settings.STRATEGIES_CALENDAR).
    start_time = models.TimeField(default=time(9, 15))
    end_time = models.TimeField(default=time(15, 30), help_text="No new entries after this time.")
    square_off_time = models.TimeField(
        null=True, blank=True, default=time(15, 15), help_text="The deployment's positions are closed at this time."
    )

    # Per-deployment risk limits, enforced by the pre-trade check (rule codes deployment_*).
    max_loss = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    max_orders = models.PositiveIntegerField(null=True, blank=True, help_text="Orders per day, across its accounts.")
    max_open_positions = models.PositiveIntegerField(null=True, blank=True)

    # Strategy-level exits on the combined P&L of its legs, checked on every tick batch.
    mtm_stop_loss = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    mtm_target = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    trailing_stop = models.DecimalField(
        max_digits=18, decimal_places=4, null=True, blank=True, help_text="Exit when P&L falls this far from its peak."
    )
    peak_pnl = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)

    # Webhook signals: the URL's token is public, the secret is kept as its SHA-256 only.
    webhook_token = models.CharField(max_length=40, unique=True, default=new_webhook_token, editable=False)
    webhook_secret_sha256 = models.CharField(max_length=64, blank=True, editable=False)
    webhook_allowed_ips = models.JSONField(default=list, blank=True)

    state = models.JSONField(default=dict, blank=True, help_text="The strategy's own memory between runs.")
    last_bar_ts = models.DateTimeField(null=True, blank=True, help_text="The last bar evaluated (its opening minute).")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status"], name="deployment_running", condition=Q(status="running")),
        ]

    def __str__(self) -> str:
        return f"{self.name} [{self.status}]"

    @property
    def order_key(self) -> str:
        """What its orders carry in ``Order.strategy``."""
        return f"dep-{self.pk}"


class DeploymentAccount(models.Model):
    """One account a deployment trades, with its quantity multiplier."""

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        HALTED = "halted", "Halted"  # its account's kill switch stopped this leg only

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="accounts")
    account = models.ForeignKey("brokers.BrokerAccount", on_delete=models.PROTECT, related_name="+")
    multiplier = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.ACTIVE)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["deployment", "account"], name="deploymentaccount_unique"),
            models.CheckConstraint(condition=Q(multiplier__gte=1), name="deploymentaccount_multiplier_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.deployment_id} on {self.account_id} x{self.multiplier}"


class StrategyIntent(models.Model):
    """An order a deployment's strategy asked for on one account, keyed deterministically
    (deployment, event time, leg, sequence) so a re-run places nothing twice."""

    class Status(models.TextChoices):
        PLACED = "placed", "Placed"
        REJECTED = "rejected", "Rejected"
        FAILED = "failed", "Failed"

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="intents")
    account = models.ForeignKey("brokers.BrokerAccount", on_delete=models.PROTECT, related_name="+")
    key = models.CharField(max_length=100)
    leg = models.CharField(max_length=40)
    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.PROTECT, related_name="+")
    side = models.CharField(max_length=4)
    quantity = models.PositiveIntegerField()
    reason = models.CharField(max_length=200, blank=True)
    order = models.ForeignKey("orders.Order", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=8, choices=Status.choices)
    message = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["deployment", "account", "key"], name="strategyintent_unique_key")
        ]

    def __str__(self) -> str:
        return f"{self.key} {self.side} {self.quantity} [{self.status}]"


class WebhookSignal(models.Model):
    """A signal received on a deployment's webhook, idempotent by its signal id."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="signals")
    signal_id = models.CharField(max_length=100)
    source = models.CharField(max_length=20, help_text="tradingview, chartink or amibroker")
    ip = models.GenericIPAddressField(null=True, blank=True)
    payload = models.JSONField()
    result = models.JSONField(default=dict, help_text="What the first delivery answered; repeated to duplicates.")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["deployment", "signal_id"], name="webhooksignal_unique_id")]

    def __str__(self) -> str:
        return f"{self.deployment_id}:{self.signal_id}"


class DeploymentEvent(models.Model):
    """One line of a deployment's log: every signal, intent, order, rejection, exit, error and lifecycle step."""

    class Kind(models.TextChoices):
        LIFECYCLE = "lifecycle", "Lifecycle"
        SIGNAL = "signal", "Signal"
        INTENT = "intent", "Intent"
        ORDER = "order", "Order"
        REJECTION = "rejection", "Rejection"
        EXIT = "exit", "Exit"
        ERROR = "error", "Error"
        NOTE = "note", "Note"

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    message = models.CharField(max_length=500)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["deployment", "-id"], name="deploymentevent_recent")]

    def __str__(self) -> str:
        return f"{self.deployment_id} {self.kind}: {self.message}"


class DeploymentMark(models.Model):
    """The deployment's combined P&L at a moment (at most one a minute): its equity curve for the day."""

    deployment = models.ForeignKey(Deployment, on_delete=models.CASCADE, related_name="marks")
    ts = models.DateTimeField()
    pnl = models.DecimalField(max_digits=18, decimal_places=4)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["deployment", "ts"], name="deploymentmark_unique_minute")]

    def __str__(self) -> str:
        return f"{self.deployment_id}@{self.ts:%H:%M} {self.pnl}"


class BacktestSweep(models.Model):
    """A grid of backtests of one definition: one ``BacktestRun`` per combination of ``grid``'s values
    (a JSON object of parameter name -> list of values), ranked by ``metric`` (a key of a run's result)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="backtest_sweeps")
    definition = models.ForeignKey(StrategyDefinition, on_delete=models.PROTECT, related_name="backtest_sweeps")
    grid = models.JSONField(default=dict)
    metric = models.CharField(max_length=40, default="sharpe", help_text="The result metric the runs are ranked by.")
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"sweep {self.pk} of {self.definition_id} [{self.status}]"


class BacktestRun(models.Model):
    """One backtest of a strategy kind with its parameters over stored 1-minute candles.

    ``settings`` holds the simulated exchange's settings (fill mode, slippage, charges schedule...),
    ``result`` the report's metrics, ``trades`` the round trips, ``equity`` the equity curve
    (``[[iso time, equity, drawdown], ...]``) and ``error`` the traceback of a run that failed."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="backtests")
    definition = models.ForeignKey(
        StrategyDefinition, null=True, blank=True, on_delete=models.PROTECT, related_name="backtests"
    )
    sweep = models.ForeignKey(BacktestSweep, null=True, blank=True, on_delete=models.CASCADE, related_name="runs")
    # Before the ``settings`` field, which shadows django.conf.settings in the class body.
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=64)
    params = models.JSONField(default=dict)
    instruments = models.JSONField(default=list, help_text="Instrument ids, e.g. [42].")
    start_date = models.DateField()
    end_date = models.DateField()
    settings = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    result = models.JSONField(default=dict, blank=True)
    trades = models.JSONField(default=list, blank=True)
    equity = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(progress__lte=100), name="backtestrun_progress_at_most_100"),
            models.CheckConstraint(condition=Q(start_date__lte=models.F("end_date")), name="backtestrun_dates_ordered"),
        ]
        indexes = [models.Index(fields=["organisation", "-created_at"], name="backtestrun_recent")]

    def __str__(self) -> str:
        return f"backtest {self.pk} {self.kind} [{self.status}]"
