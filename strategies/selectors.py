"""Reads of the strategies domain: deployments a user may see, a deployment's schedule, its own
positions (from its own trades, apart from the account's manual trades) and its P&L; an organisation's
backtests and sweeps, a sweep's progress and ranking, a run's monthly returns."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Membership
from marketdata.hours import IST
from marketdata.quotes import get_quotes
from orders.models import Order, Source, Trade
from orders.positions import PositionFigures, apply_fill
from orders.states import LIVE
from strategies.backtest.report import TRADE_COLUMNS
from strategies.errors import BacktestNotFound, DeploymentNotFound, SweepNotFound
from strategies.models import (
    AlgoId,
    BacktestRun,
    BacktestSweep,
    Deployment,
    DeploymentEvent,
    StrategyDefinition,
)

# The order sources a deployment places with: its own orders are these, carrying its order key.
DEPLOYMENT_SOURCES = (Source.STRATEGY, Source.WEBHOOK)


def _member_organisations(user):
    return Membership.objects.filter(user=user).values("organisation_id")


def strategy_list_for_user(*, user) -> QuerySet[StrategyDefinition]:
    """The definitions of the organisations ``user`` is a member of (any role: Viewers read), by name."""
    if user is None or not user.is_authenticated:
        return StrategyDefinition.objects.none()
    return (
        StrategyDefinition.objects.filter(organisation_id__in=_member_organisations(user))
        .select_related("organisation")
        .order_by("organisation_id", "name")
    )


def algo_id_list(*, organisation_id: int, active_only: bool = False) -> QuerySet[AlgoId]:
    """The organisation's algo ids (for its pages, after the organisation's own access check), by code."""
    queryset = AlgoId.objects.filter(organisation_id=organisation_id)
    return (queryset.filter(is_active=True) if active_only else queryset).order_by("code")


def deployment_list_for_user(*, user) -> QuerySet[Deployment]:
    """The deployments of the organisations ``user`` is a member of (any role: Viewers read), newest first."""
    if user is None or not user.is_authenticated:
        return Deployment.objects.none()
    return (
        Deployment.objects.filter(organisation_id__in=_member_organisations(user))
        .select_related("definition", "algo_id", "organisation")
        .order_by("-pk")
    )


def deployment_get_for_user(*, user, deployment_id: int) -> Deployment:
    """The deployment if ``user`` is a member of its organisation; raises DeploymentNotFound (404)."""
    deployment = (
        deployment_list_for_user(user=user).filter(pk=deployment_id).first() if isinstance(deployment_id, int) else None
    )
    if deployment is None:
        raise DeploymentNotFound("Deployment not found.", extra={"deployment_id": str(deployment_id)[:40]})
    return deployment


def deployment_event_list(*, deployment: Deployment, limit: int = 200) -> QuerySet[DeploymentEvent]:
    """The deployment's log, newest first."""
    return DeploymentEvent.objects.filter(deployment=deployment).order_by("-pk")[:limit]


# Schedule


def holidays() -> frozenset[date]:
    """The exchange holidays in settings.NSE_HOLIDAYS (ISO dates)."""
    return frozenset(date.fromisoformat(day) for day in settings.NSE_HOLIDAYS)


def is_market_day(day: date) -> bool:
    """Whether deployments run on ``day`` (an IST date): with settings.STRATEGIES_CALENDAR "nse", a weekday
    that is not an exchange holiday; with "always" (the standalone default), every day."""
    if settings.STRATEGIES_CALENDAR == "always":
        return True
    return day.weekday() < 5 and day not in holidays()


def deployment_in_schedule(*, deployment: Deployment, at: datetime | None = None) -> bool:
    """Whether ``at`` (default now; an aware datetime) is within the deployment's hours, IST, on a market
    day: from its start time included to its end time excluded (after which it takes no new entries)."""
    at = at or timezone.now()
    if at.tzinfo is None:
        raise ValueError("at must be an aware datetime")
    local = at.astimezone(IST)
    return is_market_day(local.date()) and deployment.start_time <= local.time() < deployment.end_time


def deployment_square_off_due(*, deployment: Deployment, at: datetime | None = None) -> bool:
    """Whether ``at`` (default now) is at or after the deployment's square-off time on a market day."""
    at = at or timezone.now()
    local = at.astimezone(IST)
    return (
        deployment.square_off_time is not None
        and is_market_day(local.date())
        and local.time() >= deployment.square_off_time
    )


# Positions and P&L


@dataclass(frozen=True, slots=True)
class DeploymentPosition:
    """The deployment's own net position in one account, instrument, product and leg."""

    account_id: int
    instrument_id: int
    product: str
    leg: str
    net_quantity: int
    average_price: Decimal
    realised_pnl: Decimal
    buy_quantity: int
    sell_quantity: int


@dataclass(frozen=True, slots=True)
class DeploymentPnl:
    """The deployment's P&L: realised, marked to market at the last quotes, and their sum.
    ``unpriced`` lists the instruments of open positions that have no quote (marked at zero)."""

    realised: Decimal
    unrealised: Decimal
    total: Decimal
    unpriced: tuple[int, ...] = ()


def deployment_trades(*, deployment: Deployment) -> QuerySet[Trade]:
    """The trades of the deployment's own orders (its order key, a deployment source), oldest first."""
    return (
        Trade.objects.filter(
            order__strategy=deployment.order_key,
            order__source__in=DEPLOYMENT_SOURCES,
            account_id__in=deployment.accounts.values("account_id"),
        )
        .select_related("order")
        .order_by("executed_at", "pk")
    )


def positions_from_trades(trades: Iterable[Trade]) -> list[DeploymentPosition]:
    """Net the trades per account, instrument, product and leg (the order's tag) by average cost."""
    books: dict[tuple[int, int, str, str], PositionFigures] = {}
    for trade in trades:
        key = (trade.account_id, trade.instrument_id, trade.product, trade.order.tag)
        figures, _ = apply_fill(
            books.get(key, PositionFigures()), side=trade.side, quantity=trade.quantity, price=trade.price
        )
        books[key] = figures
    return [
        DeploymentPosition(
            account_id=account_id,
            instrument_id=instrument_id,
            product=product,
            leg=leg,
            net_quantity=f.net_quantity,
            average_price=f.average_price,
            realised_pnl=f.realised_pnl,
            buy_quantity=f.buy_quantity,
            sell_quantity=f.sell_quantity,
        )
        for (account_id, instrument_id, product, leg), f in sorted(books.items())
    ]


def deployment_positions(*, deployment: Deployment) -> list[DeploymentPosition]:
    """The deployment's own positions (flat ones included, for their realised P&L), from its own trades,
    per account, instrument, product and leg; the account's manual trades are not in them."""
    return positions_from_trades(deployment_trades(deployment=deployment))


def pnl_of(positions: list[DeploymentPosition]) -> DeploymentPnl:
    """Realised plus marked to market at the last quotes."""
    open_ids = sorted({p.instrument_id for p in positions if p.net_quantity})
    quotes = get_quotes(open_ids) if open_ids else {}
    realised = sum((p.realised_pnl for p in positions), Decimal(0))
    unrealised = Decimal(0)
    for p in positions:
        quote = quotes.get(p.instrument_id)
        if p.net_quantity and quote is not None:
            unrealised += (quote.ltp - p.average_price) * p.net_quantity
    unpriced = tuple(i for i in open_ids if i not in quotes)
    return DeploymentPnl(realised=realised, unrealised=unrealised, total=realised + unrealised, unpriced=unpriced)


def deployment_pnl(*, deployment: Deployment) -> DeploymentPnl:
    """The deployment's realised P&L plus its open positions marked to market at the last quotes."""
    return pnl_of(deployment_positions(deployment=deployment))


def deployment_orders_today(*, deployment: Deployment) -> int:
    """How many orders the deployment placed today (IST), across its accounts."""
    start = datetime.combine(timezone.localdate(), datetime.min.time(), tzinfo=IST)
    return Order.objects.filter(
        strategy=deployment.order_key,
        source__in=DEPLOYMENT_SOURCES,
        account_id__in=deployment.accounts.values("account_id"),
        created_at__gte=start,
    ).count()


def deployment_working_orders(*, deployment: Deployment) -> QuerySet[Order]:
    """The deployment's own orders still live (resting, pending or unknown), oldest first."""
    return Order.objects.filter(
        strategy=deployment.order_key,
        source__in=DEPLOYMENT_SOURCES,
        account_id__in=deployment.accounts.values("account_id"),
        status__in=LIVE,
    ).order_by("pk")


def deployment_orders(*, deployment: Deployment) -> QuerySet[Order]:
    """The deployment's own orders, newest first, with their account and instrument."""
    return (
        Order.objects.filter(
            strategy=deployment.order_key,
            source__in=DEPLOYMENT_SOURCES,
            account_id__in=deployment.accounts.values("account_id"),
        )
        .select_related("account", "instrument")
        .order_by("-pk")
    )


# --- backtests and sweeps ----------------------------------------------------------------------------------
MAX_ID = 2**63 - 1
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def backtest_list(*, organisation_id: int, sweep_id: int | None = None) -> QuerySet[BacktestRun]:
    """The organisation's backtests, newest first (only a sweep's when ``sweep_id`` is given)."""
    runs = BacktestRun.objects.filter(organisation_id=organisation_id).select_related("definition")
    if sweep_id is not None:
        runs = runs.filter(sweep_id=sweep_id)
    return runs.order_by("-created_at", "-pk")


def backtest_get(*, organisation_id: int, run_id: int) -> BacktestRun:
    """The organisation's backtest ``run_id``; raises BacktestNotFound (404) for any other."""
    run = (
        BacktestRun.objects.filter(organisation_id=organisation_id, pk=run_id).select_related("definition").first()
        if 0 < run_id <= MAX_ID
        else None
    )
    if run is None:
        raise BacktestNotFound("Backtest not found.", extra={"backtest_id": run_id})
    return run


def sweep_list(*, organisation_id: int) -> QuerySet[BacktestSweep]:
    return (
        BacktestSweep.objects.filter(organisation_id=organisation_id)
        .select_related("definition")
        .order_by("-created_at", "-pk")
    )


def sweep_get(*, organisation_id: int, sweep_id: int) -> BacktestSweep:
    """The organisation's sweep ``sweep_id``; raises SweepNotFound (404) for any other."""
    sweep = (
        BacktestSweep.objects.filter(organisation_id=organisation_id, pk=sweep_id).select_related("definition").first()
        if 0 < sweep_id <= MAX_ID
        else None
    )
    if sweep is None:
        raise SweepNotFound("Sweep not found.", extra={"sweep_id": sweep_id})
    return sweep


@dataclass(frozen=True)
class SweepProgress:
    total: int
    queued: int
    running: int
    done: int
    failed: int

    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def percent(self) -> int:
        return 100 * self.finished // self.total if self.total else 100


def sweep_progress(*, sweep_id: int) -> SweepProgress:
    """How many of the sweep's runs are in each status, counted from its runs."""
    counts = dict(
        BacktestRun.objects.filter(sweep_id=sweep_id)
        .values("status")
        .annotate(n=models.Count("pk"))
        .values_list("status", "n")
    )
    statuses = BacktestRun.Status
    return SweepProgress(
        total=sum(counts.values()),
        queued=counts.get(statuses.QUEUED, 0),
        running=counts.get(statuses.RUNNING, 0),
        done=counts.get(statuses.DONE, 0),
        failed=counts.get(statuses.FAILED, 0),
    )


def monthly_returns(*, run: BacktestRun) -> list[tuple[int, list[float | None]]]:
    """The run's monthly returns (its report's ``monthly_returns``, ``[["2026-01", 0.012], ...]``) as rows
    of (year, twelve returns, None for a month without bars), oldest year first."""
    rows: dict[int, list[float | None]] = {}
    for month, value in run.result.get("monthly_returns") or []:
        year, number = (int(part) for part in month.split("-"))
        rows.setdefault(year, [None] * 12)[number - 1] = value
    return sorted(rows.items())


@dataclass(frozen=True)
class RankedRun:
    rank: int | None
    run: BacktestRun
    value: Decimal | None


def sweep_ranking(*, sweep: BacktestSweep) -> list[RankedRun]:
    """The sweep's runs best first by its metric; runs without it (queued, running, failed) last, unranked."""
    from strategies.services.sweeps import sweep_rank  # the ranking rule lives with the metrics it knows

    runs = backtest_list(organisation_id=sweep.organisation_id, sweep_id=sweep.pk).order_by("pk")
    ranked = sweep_rank(results=[(run, run.result) for run in runs], metric=sweep.metric)
    return [
        RankedRun(rank=n if value is not None else None, run=run, value=value)
        for n, (run, value) in enumerate(ranked, start=1)
    ]


def backtest_csv(run: BacktestRun) -> str:
    """The run's stored trade list as CSV with a header row (the report's ``TRADE_COLUMNS``)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=TRADE_COLUMNS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(run.trades)
    return out.getvalue()
