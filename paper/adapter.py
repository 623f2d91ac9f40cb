"""The paper exchange: a simulated broker that matches orders on the live (simulated) quotes.

It is the default broker: no login, the same OMS code path as a live broker. Its order book lives in
``paper.models`` so that every process shares it; ``match_quotes`` (a tick listener registered in
``PaperConfig.ready``) matches resting orders on each batch of quotes, including the prices the
market passed through while matching was behind (``marketdata.listeners.PassedRange``).
"""

from __future__ import annotations

import itertools
import uuid
from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from brokers.adapters import updates as update_stream
from brokers.adapters.base import (
    BrokerAdapter,
    BrokerFunds,
    BrokerHolding,
    BrokerModifyRequest,
    BrokerOrder,
    BrokerOrderNotFound,
    BrokerOrderRequest,
    BrokerPosition,
    BrokerRejected,
    BrokerUnavailable,
    BrokerUpdate,
    Capabilities,
    Fill,
    PlaceResult,
)
from infra import prepared
from marketdata.errors import QuotesUnavailable
from marketdata.hours import IST
from marketdata.listeners import PassedRange
from marketdata.quotes import Quote, get_quote, get_quotes
from paper import faults
from paper.margin import margin_rate
from paper.matching import is_triggered, match, protected_limit
from paper.models import PaperFill, PaperOrder

OPEN, TRIGGER_PENDING, PARTIALLY_FILLED, FILLED, CANCELLED = (
    "OPEN",
    "TRIGGER_PENDING",
    "PARTIALLY_FILLED",
    "FILLED",
    "CANCELLED",
)
LIVE = (OPEN, TRIGGER_PENDING, PARTIALLY_FILLED)


class PaperAdapter(BrokerAdapter):
    """One account at the paper exchange (no login, no session)."""

    code = "paper"
    # Its book is in this database: the OMS places through it inside the transaction recording the order.
    capabilities = Capabilities(places_in_transaction=True)

    # --- writes -----------------------------------------------------------------------------------
    def place_order(self, request: BrokerOrderRequest) -> PlaceResult:
        """Record the order and match it at once against the current quote.

        Returns the paper order id and its status after matching. Raises BrokerRejected for a market
        order in an instrument with no quote (the exchange's "no trade today" rule) and
        BrokerUnavailable when a network fault is simulated.
        """
        fault = faults.take(request.tag)
        order, updates, fills = self._accept(request, fault)
        try:
            with transaction.atomic():  # the order as matched, and its fills
                order.save(force_insert=True)
                PaperFill.objects.bulk_create(fills)
        except IntegrityError:
            # The same tag twice is the same order, never a second one.
            existing = PaperOrder.objects.get(account_id=self.account_id, tag=request.tag)
            return PlaceResult(existing.broker_order_id, existing.status)
        if fault == faults.LOSE_RESPONSE:
            raise BrokerUnavailable("The paper exchange's answer was lost (simulated).")
        update_stream.emit(updates)  # after the block: committed unless the caller holds a transaction
        return PlaceResult(order.broker_order_id, order.status)

    def place_order_in_transaction(self, request: BrokerOrderRequest) -> tuple[PlaceResult, list[BrokerUpdate]]:
        """``place_order`` inside the caller's transaction (the OMS's, which has just created the order
        with this fresh tag), returning the updates instead of emitting them."""
        fault = faults.take(request.tag)
        order, updates, fills = self._accept(request, fault)
        prepared.insert([order])
        prepared.insert(fills)
        if fault == faults.LOSE_RESPONSE:
            raise BrokerUnavailable("The paper exchange's answer was lost (simulated).")
        return PlaceResult(order.broker_order_id, order.status), updates

    def _accept(
        self, request: BrokerOrderRequest, fault: str | None
    ) -> tuple[PaperOrder, list[BrokerUpdate], list[PaperFill]]:
        """Build the paper order and match it against the current quote; return it (unsaved) with its
        updates and fills. Raises BrokerUnavailable for a dropped request and BrokerRejected for a
        market order with no quote, or any order while the quote store cannot be read."""
        if request.variety not in self.capabilities.varieties:  # the OMS refuses it first; never book one
            raise BrokerRejected(
                f"The paper exchange takes regular orders only, not {request.variety}.", code="broker_cannot_variety"
            )
        if fault == faults.DROP_REQUEST:
            raise BrokerUnavailable("The paper exchange did not answer (simulated).")
        try:
            quote = get_quote(request.instrument_id)
        except QuotesUnavailable:  # the exchange cannot see its market: refused, nothing booked
            raise BrokerRejected(
                "The paper exchange cannot read the market's price now: the order was not placed.",
                code="paper_market_unavailable",
            ) from None
        if request.order_type == "MARKET" and quote is None:
            raise BrokerRejected("Market order rejected: the contract has not traded today.", code="no_trade_today")
        price = request.price
        if request.order_type == "MARKET":
            price = protected_limit(
                side=request.side,
                instrument_type=request.instrument_type,
                ltp=quote.ltp,
                tick=request.tick_size,
            )
        order = PaperOrder(
            account_id=self.account_id,
            tag=request.tag,
            broker_order_id=f"P{uuid.uuid4().hex[:15].upper()}",
            instrument_id=request.instrument_id,
            side=request.side,
            quantity=request.quantity,
            order_type=request.order_type,
            product=request.product,
            validity=request.validity,
            price=price,
            trigger_price=request.trigger_price,
            status=TRIGGER_PENDING if request.order_type in {"SL", "SL-M"} else OPEN,
        )
        updates = [_update(order, order.status, "accepted")]
        more, fills = _run(order, request.exchange, request.instrument_type, request.tick_size, quote)
        return order, updates + more, fills

    def modify_order(self, *, broker_order_id: str, change: BrokerModifyRequest, variety: str = "regular") -> None:
        """Change a live order and re-match it. Raises BrokerRejected when it is no longer live or the
        new quantity is below what has filled, and BrokerUnavailable when a network fault is simulated
        (``drop_request``: nothing changed; ``lose_response``: changed, the answer lost)."""
        with transaction.atomic():
            order = self._lock(broker_order_id)
            fault = faults.take(order.tag)
            if fault == faults.DROP_REQUEST:
                raise BrokerUnavailable("The paper exchange did not answer (simulated).")
            if order.status not in LIVE:
                raise BrokerRejected(f"Order {broker_order_id} is {order.status} and cannot be modified.")
            if change.quantity is not None:
                if change.quantity <= order.filled_quantity:
                    raise BrokerRejected("The new quantity must be above the filled quantity.")
                order.quantity = change.quantity
            if change.price is not None:
                order.price = change.price
            if change.trigger_price is not None:
                order.trigger_price = change.trigger_price
            if change.order_type is not None:
                order.order_type = change.order_type
            instrument = order.instrument
            updates = [_update(order, order.status, "modified")]
            more, fills = _run(
                order, instrument.exchange, instrument.instrument_type, instrument.tick_size, get_quote(instrument.pk)
            )
            updates += more
            order.save()
            PaperFill.objects.bulk_create(fills)
        if fault == faults.LOSE_RESPONSE:
            raise BrokerUnavailable("The paper exchange's answer was lost (simulated).")
        update_stream.emit(updates)  # after the block: committed unless the caller holds a transaction

    def cancel_order(self, *, broker_order_id: str, variety: str = "regular") -> None:
        """Cancel the remainder of a live order. Raises BrokerRejected when it is no longer live, and
        BrokerUnavailable when a network fault is simulated (``drop_request``: still live;
        ``lose_response``: cancelled, the answer lost)."""
        with transaction.atomic():
            order = self._lock(broker_order_id)
            fault = faults.take(order.tag)
            if fault == faults.DROP_REQUEST:
                raise BrokerUnavailable("The paper exchange did not answer (simulated).")
            if order.status not in LIVE:
                raise BrokerRejected(f"Order {broker_order_id} is {order.status} and cannot be cancelled.")
            order.status = CANCELLED
            order.save(update_fields=["status", "updated_at"])
            updates = [_update(order, CANCELLED, "cancelled by user")]
        if fault == faults.LOSE_RESPONSE:
            raise BrokerUnavailable("The paper exchange's answer was lost (simulated).")
        update_stream.emit(updates)  # after the block: committed unless the caller holds a transaction

    # --- reads ------------------------------------------------------------------------------------
    def order_book(self) -> list[BrokerOrder]:
        """Return every paper order of the account with its fills."""
        orders = (
            PaperOrder.objects.filter(account_id=self.account_id)
            .select_related("instrument")
            .prefetch_related("fills")
            .order_by("id")
        )
        return [
            BrokerOrder(
                tag=o.tag,
                broker_order_id=o.broker_order_id,
                status=o.status,
                quantity=o.quantity,
                filled_quantity=o.filled_quantity,
                average_price=o.average_price,
                fills=tuple(_fill(f, o, o.instrument.exchange) for f in o.fills.all()),
                message=o.message,
                order_type=o.order_type,
                price=o.price,
                trigger_price=o.trigger_price,
            )
            for o in orders
        ]

    def trades(self) -> list[Fill]:
        fills = PaperFill.objects.filter(order__account_id=self.account_id).select_related("order__instrument")
        return [_fill(f, f.order, f.order.instrument.exchange) for f in fills.order_by("id")]

    def positions(self) -> list[BrokerPosition]:
        """Return net quantity per (instrument, product) summed from the fills."""
        net: dict[tuple[int, str], int] = defaultdict(int)
        fills = PaperFill.objects.filter(order__account_id=self.account_id).select_related("order")
        for f in fills:
            net[(f.order.instrument_id, f.order.product)] += f.quantity if f.order.side == "BUY" else -f.quantity
        return [BrokerPosition(instrument_id=i, product=p, net_quantity=q) for (i, p), q in sorted(net.items()) if q]

    def holdings(self) -> list[BrokerHolding]:
        """Return the account's delivery holdings: its CNC fills netted in order at average cost (the
        paper exchange settles delivery at once, so today's CNC buys are held and its CNC sells are gone).
        Shares bought today (IST) and still held are reported as ``t1_quantity``, as a broker reports
        purchases not yet settled into the demat account."""
        held: dict[int, tuple[int, Decimal]] = {}
        bought_today: dict[int, int] = defaultdict(int)
        today = timezone.localdate(timezone=IST)
        fills = (
            PaperFill.objects.filter(order__account_id=self.account_id, order__product="CNC")
            .order_by("id")
            .values_list("order__instrument_id", "order__side", "quantity", "price", "ts")
        )
        for instrument_id, side, quantity, price, ts in fills:
            net, average = held.get(instrument_id, (0, Decimal(0)))
            if side == "BUY":
                average = (net * average + quantity * price) / (net + quantity) if net + quantity > 0 else price
                net += quantity
                if timezone.localdate(ts, timezone=IST) == today:
                    bought_today[instrument_id] += quantity
            else:
                net -= quantity
            held[instrument_id] = (net, average if net > 0 else Decimal(0))
        return [
            BrokerHolding(
                instrument_id=i,
                quantity=net,
                average_price=average.quantize(Decimal("0.0001")),
                t1_quantity=min(net, bought_today[i]),
            )
            for i, (net, average) in sorted(held.items())
            if net > 0
        ]

    def funds(self) -> BrokerFunds:
        """Return the configured opening cash; the OMS's ledger tracks margin for paper accounts."""
        cash = Decimal(settings.PAPER_OPENING_CASH)
        return BrokerFunds(cash=cash, margin_used=Decimal(0), available=cash)

    def quotes(self, instrument_ids: list[int]) -> dict[int, Quote]:
        return get_quotes(instrument_ids)

    def margin_rate(self, *, product: str, instrument_type: str, side: str) -> Decimal:
        return margin_rate(product=product, instrument_type=instrument_type, side=side)

    # --- helpers ----------------------------------------------------------------------------------
    def _lock(self, broker_order_id: str) -> PaperOrder:
        try:
            return (
                PaperOrder.objects.select_for_update(of=("self",))
                .select_related("instrument")
                .get(account_id=self.account_id, broker_order_id=broker_order_id)
            )
        except PaperOrder.DoesNotExist:
            raise BrokerOrderNotFound(f"No paper order {broker_order_id}.") from None


def _fill(fill: PaperFill, order: PaperOrder, exchange: str) -> Fill:
    return Fill(
        fill.trade_id, fill.quantity, fill.price, fill.ts, broker_order_id=order.broker_order_id, exchange=exchange
    )


def _update(order: PaperOrder, status: str, message: str, fill: Fill | None = None) -> BrokerUpdate:
    return BrokerUpdate(
        account_id=order.account_id,
        tag=order.tag,
        broker_order_id=order.broker_order_id,
        status=status,
        ts=timezone.now(),
        fill=fill,
        message=message,
    )


def match_quotes(quotes: list[Quote], passed: Mapping[int, PassedRange] | None = None) -> None:
    """Match every live paper order in the instruments of this batch (oldest first): first against
    the range the market passed through since the last batch matched (``passed``, when quotes were
    conflated while matching was behind), then against the newest quote."""
    by_instrument = {q.instrument_id: q for q in quotes}
    passed = passed or {}
    pending = list(
        PaperOrder.objects.filter(instrument_id__in=list(by_instrument), status__in=LIVE)
        .order_by("id")
        .values_list("id", "instrument_id")
    )
    for pk, instrument_id in pending:
        with transaction.atomic():
            order = PaperOrder.objects.select_for_update(of=("self",)).select_related("instrument").get(pk=pk)
            if order.status not in LIVE:
                continue
            instrument = order.instrument
            updates, fills = [], []
            between = passed.get(instrument_id)
            if between is not None and order.updated_at <= between.since:  # it rested through them all
                updates, fills = _run_passed(
                    order, instrument.exchange, instrument.instrument_type, instrument.tick_size, between
                )
            if order.status in LIVE:
                more, more_fills = _run(
                    order,
                    instrument.exchange,
                    instrument.instrument_type,
                    instrument.tick_size,
                    by_instrument[instrument_id],
                )
                updates += more
                fills += more_fills
            if updates:
                order.save()
                PaperFill.objects.bulk_create(fills)
        if updates:
            update_stream.emit(updates)


def _run_passed(
    order: PaperOrder, exchange: str, instrument_type: str, tick: Decimal, between: PassedRange
) -> tuple[list[BrokerUpdate], list[PaperFill]]:
    """Trigger and fill ``order``, which rested while the market went through ``between``; return the
    updates and the new fills, unsaved.

    A stop whose trigger the last price touched is triggered (an SL-M's protected limit taken from
    its trigger, the last price then); it fills only on the newest quote, since the range does not
    say whether the price crossed its limit after the trigger or before. A resting limit that the
    opposite side crossed fills in full at its own price: a resting order is the passive side, so
    it trades at its limit, and the depth of the quotes in between is not kept.
    """
    updates: list[BrokerUpdate] = []
    if order.status == TRIGGER_PENDING:
        touched = between.ltp_high if order.side == "BUY" else between.ltp_low
        if not is_triggered(side=order.side, trigger=order.trigger_price, ltp=touched):
            return updates, []
        order.status = OPEN
        if order.order_type == "SL-M":
            order.price = protected_limit(
                side=order.side, instrument_type=instrument_type, ltp=order.trigger_price, tick=tick
            )
        updates.append(_update(order, OPEN, "triggered"))
        return updates, []
    crossed = between.buy_low <= order.price if order.side == "BUY" else between.sell_high >= order.price
    if not crossed:
        return updates, []
    quantity = order.quantity - order.filled_quantity
    seq = (order.fills.count() if order.filled_quantity else 0) + 1
    value = (order.average_price or Decimal(0)) * order.filled_quantity + order.price * quantity
    now = timezone.now()
    order.filled_quantity = order.quantity
    order.average_price = (value / order.filled_quantity).quantize(Decimal("0.0001"))
    order.status = FILLED
    fill = PaperFill(
        order=order, trade_id=f"{order.broker_order_id}-{seq}", quantity=quantity, price=order.price, ts=now
    )
    updates.append(_update(order, FILLED, "", _fill(fill, order, exchange)))
    return updates, [fill]


def _run(
    order: PaperOrder, exchange: str, instrument_type: str, tick: Decimal, quote: Quote | None
) -> tuple[list[BrokerUpdate], list[PaperFill]]:
    """Trigger and fill ``order`` (locked or new, in an instrument of ``instrument_type`` and tick
    size ``tick``) against ``quote``; return the updates and the new fills, unsaved: the caller
    saves the order, then the fills."""
    updates: list[BrokerUpdate] = []
    fills: list[PaperFill] = []
    if quote is None:
        return updates, fills
    if order.status == TRIGGER_PENDING:
        if not is_triggered(side=order.side, trigger=order.trigger_price, ltp=quote.ltp):
            return updates, fills
        order.status = OPEN
        if order.order_type == "SL-M":
            order.price = protected_limit(
                side=order.side,
                instrument_type=instrument_type,
                ltp=quote.ltp,
                tick=tick,
            )
        updates.append(_update(order, OPEN, "triggered"))
    market = order.order_type in {"MARKET", "SL-M"}
    result = match(
        side=order.side,
        remaining=order.quantity - order.filled_quantity,
        limit=order.price,
        quote=quote,
        tick=tick,
        slippage_bps=settings.PAPER_SLIPPAGE_BPS if market else 0,
    )
    seq = itertools.count((order.fills.count() if order.pk and order.filled_quantity else 0) + 1)
    now = timezone.now()
    for quantity, price in result.fills:
        value = (order.average_price or Decimal(0)) * order.filled_quantity + price * quantity
        order.filled_quantity += quantity
        order.average_price = (value / order.filled_quantity).quantize(Decimal("0.0001"))
        order.status = FILLED if order.filled_quantity == order.quantity else PARTIALLY_FILLED
        fill = PaperFill(
            order=order, trade_id=f"{order.broker_order_id}-{next(seq)}", quantity=quantity, price=price, ts=now
        )
        fills.append(fill)
        updates.append(_update(order, order.status, "", _fill(fill, order, exchange)))
    if order.validity == "IOC" and order.status in {OPEN, PARTIALLY_FILLED}:
        order.status = CANCELLED
        updates.append(_update(order, CANCELLED, "IOC remainder cancelled"))
    return updates, fills
