"""What a running deployment's strategy is fed, read from the database: the symbol master it may look up,
the stored 1-minute bars (as bars of its timeframe) and the fills of its own orders.

Fills are read by a cursor on the trade id, from the deployment's reference account (its first, by the
order it was added in), divided by that account's multiplier to the base quantity the strategy thinks
in. A trade's id is allocated under its account's ledger lock, so one account's trades commit in id
order and a cursor on the id misses none (``strategies.runtime`` says why fills are read rather than
pushed).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal

from marketdata.models import Candle, Instrument, InstrumentType
from orders.models import Trade
from strategies.contract import Bar, Fill, OptionRow
from strategies.engine import aggregate
from strategies.models import Deployment, DeploymentAccount


class SymbolMaster:
    """The ``Instruments`` a strategy may look up: the symbol master, read-only, memoised per run."""

    def __init__(self) -> None:
        self._lots: dict[int, int] = {}

    def lookup(self, exchange: str, symbol: str) -> int | None:
        rows = Instrument.objects.filter(exchange=exchange.upper(), tradingsymbol=symbol, is_active=True)
        return rows.values_list("pk", flat=True).first()

    def lot_size(self, instrument_id: int) -> int:
        if instrument_id not in self._lots:
            lot = Instrument.objects.filter(pk=instrument_id).values_list("lot_size", flat=True).first()
            self._lots[instrument_id] = lot or 1
        return self._lots[instrument_id]

    def options(self, underlying: str, *, on: date) -> Sequence[OptionRow]:
        rows = Instrument.objects.filter(
            underlying=underlying,
            instrument_type__in=(InstrumentType.CE, InstrumentType.PE),
            expiry__gte=on,
            is_active=True,
        )
        nearest = rows.order_by("expiry").values_list("expiry", flat=True).first()
        if nearest is None:
            return []
        return [
            OptionRow(
                instrument_id=row.pk,
                strike=row.strike or Decimal(0),
                option_type=row.instrument_type,  # type: ignore[arg-type]  # CE or PE by the filter
                expiry=row.expiry,  # type: ignore[arg-type]  # options have an expiry
                lot_size=row.lot_size,
            )
            for row in rows.filter(expiry=nearest).order_by("strike", "instrument_type")
        ]


def _minute_bars(rows: Iterable[Candle]) -> list[Bar]:
    return [
        Bar(instrument_id=c.instrument_id, ts=c.ts, open=c.open, high=c.high, low=c.low, close=c.close, volume=c.volume)
        for c in rows
    ]


def bars_at(*, instrument_ids: Iterable[int], bar_ts: datetime, timeframe: int) -> list[Bar]:
    """The bar opening at ``bar_ts`` of each instrument that traded in it, by instrument id."""
    rows = Candle.objects.filter(
        instrument_id__in=sorted(set(instrument_ids)), ts__gte=bar_ts, ts__lt=bar_ts + timedelta(minutes=timeframe)
    ).order_by("instrument_id", "ts")
    return aggregate(_minute_bars(rows), timeframe)


def bars_before(*, instrument_ids: Iterable[int], before: datetime, timeframe: int, count: int) -> list[Bar]:
    """Up to ``count`` bars of each instrument opening before ``before``, oldest first across instruments."""
    bars: list[Bar] = []
    for instrument_id in sorted(set(instrument_ids)):
        minutes = list(
            Candle.objects.filter(instrument_id=instrument_id, ts__lt=before).order_by("-ts")[: count * timeframe]
        )
        bars.extend(aggregate(_minute_bars(reversed(minutes)), timeframe)[-count:])
    return sorted(bars, key=lambda bar: (bar.ts, bar.instrument_id))


def reference_accounts(deployment_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """Each deployment's reference account, whose fills its strategy is told of (its first, by the order it
    was added in), as deployment id -> (account id, multiplier)."""
    found: dict[int, tuple[int, int]] = {}
    rows = DeploymentAccount.objects.filter(deployment_id__in=list(deployment_ids)).order_by("pk")
    for deployment_id, account_id, multiplier in rows.values_list("deployment_id", "account_id", "multiplier"):
        found.setdefault(deployment_id, (account_id, multiplier))
    return found


def _fill(trade: Trade, multiplier: int) -> Fill | None:
    quantity = trade.quantity // multiplier
    if not quantity:
        return None
    return Fill(
        leg=trade.order.tag,
        instrument_id=trade.instrument_id,
        side="BUY" if trade.side == "BUY" else "SELL",
        quantity=quantity,
        price=trade.price,
        ts=trade.executed_at,
    )


def new_fills(
    *, deployments: Sequence[Deployment], after: dict[int, int], accounts: dict[int, tuple[int, int]]
) -> dict[int, list[tuple[int, Fill | None]]]:
    """Per deployment id: (trade id, fill in base quantity) of its trades on its reference account
    (``accounts``) with an id above ``after[id]``, oldest first, in one query for all of them. The fill is
    None for a part fill smaller than one base unit (still listed, so the cursor moves past it)."""
    by_key = {d.order_key: d.pk for d in deployments if d.pk in accounts}
    found: dict[int, list[tuple[int, Fill | None]]] = {pk: [] for pk in by_key.values()}
    if not by_key:
        return found
    trades = (
        Trade.objects.filter(order__strategy__in=list(by_key), pk__gt=min(after[pk] for pk in by_key.values()))
        .select_related("order")
        .order_by("pk")
    )
    for trade in trades:
        deployment_id = by_key[trade.order.strategy]
        account_id, multiplier = accounts[deployment_id]
        if trade.account_id == account_id and trade.pk > after[deployment_id]:
            found[deployment_id].append((trade.pk, _fill(trade, multiplier)))
    return found
