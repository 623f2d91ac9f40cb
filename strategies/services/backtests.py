"""Backtests: a strategy kind with its parameters over stored 1-minute candles, recorded as a ``BacktestRun``.

``backtest_prepare`` checks what a backtest needs (parameters by the kind's schema, instruments in the
symbol master, a date range with stored candles, the simulated exchange's settings) and is shared by
``backtest_create`` and ``manage.py backtest``; ``backtest_run`` replays the bars through the engine
(``strategies.backtest.engine``) and stores the report (``strategies.backtest.report``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from pydantic import ValidationError

from audit.services import audit_record
from marketdata.models import Instrument
from strategies.backtest.bars import candles_exist, instrument_spec, stored_bars
from strategies.backtest.engine import BacktestResult, BacktestSettings, InstrumentSpec, run_backtest
from strategies.backtest.report import equity_curve, metrics, monthly_returns
from strategies.errors import BacktestForbidden, BacktestInvalid, BacktestNoData, BacktestNotQueued, StrategyInvalid
from strategies.models import BacktestRun, StrategyDefinition
from strategies.registry import validate_params
from strategies.services.access import WRITERS, require_role

MAX_INSTRUMENTS = 50
BACKTEST_TIME_LIMIT = 1800  # seconds: the run_backtest task's hard time limit
MAX_DAYS = 366 * 5
MAX_EQUITY_POINTS = 2_000  # the stored curve; the full one is a minute a point
_SYMBOL = re.compile(r"^([A-Z]{2,5}):([A-Z0-9][A-Z0-9 &_.\-]{0,39})$")


@dataclass(frozen=True, slots=True)
class Prepared:
    kind: str
    params: dict[str, Any]
    instruments: list[InstrumentSpec]
    start: date
    end: date
    settings: BacktestSettings


def _date(value: object, field: str) -> date:
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise BacktestInvalid(f"{field} must be a date (YYYY-MM-DD).", extra={"field": field})


def _instruments(raw: object) -> list[Instrument]:
    if isinstance(raw, str | int):
        raw = [raw]
    if not isinstance(raw, list | tuple) or not raw:
        raise BacktestInvalid("instruments must name at least one instrument.", extra={"field": "instruments"})
    if len(raw) > MAX_INSTRUMENTS:
        raise BacktestInvalid(
            f"A backtest takes at most {MAX_INSTRUMENTS} instruments.", extra={"field": "instruments"}
        )
    found: list[Instrument] = []
    for n, item in enumerate(raw):
        field = f"instruments.{n}"
        if type(item) is int and 0 < item < 2**63:
            instrument = Instrument.objects.filter(pk=item).first()
        elif isinstance(item, str) and (m := _SYMBOL.match(item.strip().upper())):
            instrument = Instrument.objects.filter(
                exchange=m.group(1), tradingsymbol=m.group(2), is_active=True
            ).first()
        else:
            raise BacktestInvalid(
                "An instrument is EXCHANGE:SYMBOL (e.g. NSE:INFY) or an instrument id.", extra={"field": field}
            )
        if instrument is None:
            raise BacktestInvalid(f"{item} is not in the symbol master.", extra={"field": field, "instrument": item})
        if instrument not in found:
            found.append(instrument)
    return found


def backtest_prepare(
    *, kind: str, params: object, instruments: object, start: object, end: object, settings: object = None
) -> Prepared:
    """Return what a backtest runs with, checked.

    Raises StrategyUnknown / StrategyInvalid (422, ``extra["field"]`` naming the parameter) for an unknown
    kind or bad parameters; BacktestInvalid (422, naming the field) for a malformed or unknown instrument,
    a bad date range or bad settings; BacktestNoData (422) when an instrument has no stored candles in the
    range."""
    clean = validate_params(kind, params).model_dump(mode="json")
    rows = _instruments(instruments)
    first, last = _date(start, "start"), _date(end, "end")
    if first > last:
        raise BacktestInvalid("start must be on or before end.", extra={"field": "start"})
    if (last - first).days >= MAX_DAYS:
        raise BacktestInvalid(f"A backtest covers at most {MAX_DAYS} days.", extra={"field": "end"})
    if settings is not None and not isinstance(settings, dict):
        raise BacktestInvalid("settings must be a JSON object.", extra={"field": "settings"})
    try:
        exchange = BacktestSettings.model_validate(settings or {})
    except ValidationError as error:
        item = error.errors(include_url=False, include_input=False)[0]
        field = ".".join(["settings", *(str(part) for part in item["loc"])])
        raise BacktestInvalid(f"{field}: {item['msg']}", extra={"field": field}) from None
    have = candles_exist(instrument_ids=[row.pk for row in rows], start=first, end=last)
    if missing := [row for row in rows if row.pk not in have]:
        names = ", ".join(f"{row.exchange}:{row.tradingsymbol}" for row in missing)
        raise BacktestNoData(
            f"No stored 1-minute candles for {names} from {first} to {last}.",
            extra={"field": "start", "instruments": [row.pk for row in missing]},
        )
    return Prepared(kind, clean, [instrument_spec(row) for row in rows], first, last, exchange)


def backtest_create(
    *,
    actor,
    definition: StrategyDefinition,
    params: object = None,
    instruments: object,
    start: object,
    end: object,
    settings: object = None,
) -> BacktestRun:
    """Record a queued backtest of ``definition`` (its parameters unless ``params`` is given); return it.

    Raises BacktestForbidden (403) unless the actor is an Owner, Admin or Trader of the definition's
    organisation, and whatever ``backtest_prepare`` raises."""
    require_role(
        user=actor,
        organisation_id=definition.organisation_id,
        roles=WRITERS,
        error=BacktestForbidden,
        what="run backtests",
    )
    prepared = backtest_prepare(
        kind=definition.kind,
        params=definition.params if params is None else params,
        instruments=instruments,
        start=start,
        end=end,
        settings=settings,
    )
    with transaction.atomic():
        run = BacktestRun.objects.create(
            organisation_id=definition.organisation_id,
            definition=definition,
            kind=prepared.kind,
            params=prepared.params,
            instruments=[spec.instrument_id for spec in prepared.instruments],
            start_date=prepared.start,
            end_date=prepared.end,
            settings=prepared.settings.model_dump(mode="json"),
            created_by=actor,
        )
        audit_record(
            actor=actor,
            action="strategy.backtest.created",
            target=run,
            payload={
                "definition_id": definition.pk,
                "kind": run.kind,
                "params": run.params,
                "instruments": run.instruments,
                "start": str(run.start_date),
                "end": str(run.end_date),
            },
        )
    return run


def backtest_report(result: BacktestResult) -> dict[str, Any]:
    """The stored form of a result: metrics (with monthly returns), trades, the thinned equity curve."""
    values = metrics(result)
    values["monthly_returns"] = [[month, round(value, 6)] for month, value in monthly_returns(
        result.equity, result.initial_capital
    )]  # fmt: skip
    values["rejections"] = result.rejections[:100]
    return {
        "result": values,
        "trades": [trade.as_json() for trade in result.trades],
        "equity": equity_curve(result, most=MAX_EQUITY_POINTS),
    }


def backtest_run(*, run: BacktestRun) -> BacktestRun:
    """Execute a queued run: replay its stored bars, store the report; return the run, done or failed.

    A strategy that raises, or data gone since the run was queued, fails the run with the reason in
    ``error``. Raises BacktestNotQueued (409) for a run that is not queued (it runs once), unless it was
    abandoned running by a dead worker (older than ``BACKTEST_TIME_LIMIT``), which runs again."""
    now = timezone.now()
    # A run still "running" past the longest any worker may run it (the task's hard time limit) was left by
    # a worker that died: its redelivered task runs it again from the start (a backtest is deterministic).
    abandoned = Q(status=BacktestRun.Status.RUNNING, started_at__lt=now - timedelta(seconds=BACKTEST_TIME_LIMIT + 30))
    if not BacktestRun.objects.filter(Q(status=BacktestRun.Status.QUEUED) | abandoned, pk=run.pk).update(
        status=BacktestRun.Status.RUNNING, started_at=now, progress=0
    ):
        raise BacktestNotQueued("This backtest is not queued.", extra={"backtest_id": run.pk})
    last_reported = [0]

    def progress(share: float) -> None:
        percent = min(99, int(share * 100))
        if percent >= last_reported[0] + 5:
            last_reported[0] = percent
            BacktestRun.objects.filter(pk=run.pk).update(progress=percent)

    fields: dict[str, Any]
    try:
        specs = [instrument_spec(row) for row in Instrument.objects.filter(pk__in=run.instruments).order_by("pk")]
        bars = stored_bars(instrument_ids=run.instruments, start=run.start_date, end=run.end_date)
        result = run_backtest(
            kind=run.kind,
            params=run.params,
            instruments=specs,
            bars=bars,
            settings=BacktestSettings.model_validate(run.settings),
            progress=progress,
        )
        report = backtest_report(result)
        failed = bool(result.error)
        fields = {**report, "error": result.error}
    except (StrategyInvalid, ValidationError) as error:  # a kind or schema changed since it was queued
        failed, fields = True, {"error": str(error)}
    status = BacktestRun.Status.FAILED if failed else BacktestRun.Status.DONE
    with transaction.atomic():
        BacktestRun.objects.filter(pk=run.pk).update(status=status, progress=100, finished_at=timezone.now(), **fields)
        run.refresh_from_db()
        audit_record(
            actor="system:backtests",
            action="strategy.backtest.finished",
            target=run,
            payload={"status": status, "net_pnl": run.result.get("net_pnl"), "trades": run.result.get("trades")},
        )
    return run
