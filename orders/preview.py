"""What orders would block and cost before they are placed: the ticket's and a basket's margin and charges.

``order_preview`` takes one order or a basket's legs and answers with each leg's charges and the
margin the whole set adds, computed the way placing computes it:

- for a broker family whose adapter declares ``capabilities.margins`` (an order-margins API, as
  Kite's), the broker's own numbers (``BrokerAdapter.order_margins``);
- otherwise by the ledger's rules (``orders.margin.group_margin`` with the adapter's margin rates),
  per (instrument, product) group: the group's block with its position, its working orders and the
  new legs, less what the group blocks now. That is exactly what placing the legs one after another
  moves into ``Funds.margin_blocked``. Legs in one group net (a buy and a sell of the same contract
  block the larger side); the paper exchange's rules give no benefit across instruments (a hedged
  spread blocks the sum of its groups), and the preview says so (``hedge``).

Nothing is written or audited: a malformed leg raises OrderInvalid (``basket_invalid`` naming each
leg, ``extra["legs"]``), which the caller shows beside the field.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from brokers import charges as charge_rules
from brokers.adapters.base import BrokerAdapter, BrokerError, MarginLeg
from brokers.adapters.registry import adapter_for
from marketdata.models import Instrument
from marketdata.quotes import get_quotes
from orders.errors import OrderInvalid
from orders.locks import today_ist
from orders.margin import group_margin
from orders.models import Funds, Order, Position
from orders.services.requests import (
    OrderRequest,
    arithmetic_refused,
    check_choices,
    check_numbers,
    instrument_of,
    order_intent,
    stop_price,
)
from orders.states import LIVE
from rms.errors import RiskRejected
from rms.services import validate_order_input

CENT = Decimal("0.01")
MAX_LEGS = 20  # a basket of more legs is refused (Kite's basket takes 20 orders)
MAX_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class LegPreview:
    """One leg: its instrument, the price its margin and charges are valued at (None without a price or
    a last price), and its charges as if it filled at that price in full."""

    request: OrderRequest
    instrument: Instrument
    price: Decimal | None
    charges: charge_rules.Charges


@dataclass(frozen=True, slots=True)
class Preview:
    """The legs' charges and the margin they add together. ``basis`` says how the margin was computed:
    ``"broker"`` (the broker's order-margins API) or ``"rules"`` (the ledger's rules with the broker's
    rates; the paper exchange). ``hedge`` says whether legs offset each other across instruments
    (False by the rules: the sum per instrument and product, netted within each)."""

    legs: list[LegPreview]
    margin: Decimal
    available: Decimal | None
    basis: str
    hedge: bool

    @property
    def charges(self) -> Decimal:
        return sum((leg.charges.total for leg in self.legs), Decimal(0))

    @property
    def shortfall(self) -> Decimal:
        """How much more cash placing needs (0 when the available margin covers it or is not known)."""
        if self.available is None:
            return Decimal(0)
        return max(self.margin - self.available, Decimal(0))


def leg_charges(*, instrument: Instrument, request: OrderRequest, price: Decimal | None) -> charge_rules.Charges:
    """The charges of ``request`` filled in full at ``price``, by the backtester's schedule and code."""
    if price is None:
        return charge_rules.NO_CHARGES
    segment = charge_rules.segment_of(instrument_type=instrument.instrument_type, product=str(request.product))
    return charge_rules.order_charges(
        schedule=charge_rules.ChargeSchedule(),
        segment=segment,
        side=str(request.side),
        turnover=price * request.quantity,
    )


def check_legs(*, account, actor, requests: list[OrderRequest]) -> list[Instrument]:
    """Check each leg as ``check_basket`` does (choices, numbers, the instrument and its own rules: lot
    multiple, tick, band, product), auditing nothing; return the instruments. Raises OrderInvalid
    ``basket_invalid`` with every refused leg in ``extra["legs"]`` (``{"leg", "code", "message", "extra"}``),
    or ``basket_empty`` / ``basket_too_large``."""
    if not requests:
        raise OrderInvalid("A basket needs at least one leg.", code="basket_empty")
    if len(requests) > MAX_LEGS:
        raise OrderInvalid(
            f"A basket holds at most {MAX_LEGS} legs.", code="basket_too_large", extra={"limit": MAX_LEGS}
        )
    instruments, refused, today = [], [], today_ist()
    # One read for every leg's instrument; a leg whose instrument is missing gets instrument_of's refusal.
    wanted = {r.instrument_id for r in requests if type(r.instrument_id) is int and 0 < r.instrument_id <= MAX_ID}
    found = Instrument.objects.in_bulk(wanted)
    for leg, request in enumerate(requests):
        try:
            check_choices(request)
            check_numbers(request)
            instrument = found.get(request.instrument_id) or instrument_of(request)
            with arithmetic_refused():
                validate_order_input(
                    order_intent(account=account, actor=actor, instrument=instrument, request=request), today
                )
            instruments.append(instrument)
        except (OrderInvalid, RiskRejected) as error:
            refused.append({"leg": leg, "code": error.code, "message": error.message, "extra": error.extra})
    if refused:
        raise OrderInvalid(
            f"{len(refused)} of the basket's {len(requests)} legs are invalid.",
            code="basket_invalid",
            extra={"legs": refused},
        )
    return instruments


def _margin_price(request: OrderRequest, ltp: Decimal | None) -> Decimal | None:
    """The price placing would store as the order's margin price (``Order.margin_price``, 4 places)."""
    price = request.price or stop_price(request) or ltp
    return None if price is None else Decimal(price).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def _rules_margin(*, adapter: BrokerAdapter, account, legs: list[LegPreview]) -> Decimal:
    groups: dict[tuple[int, str], list[LegPreview]] = defaultdict(list)
    for leg in legs:
        groups[(leg.instrument.pk, str(leg.request.product))].append(leg)
    instrument_ids, products = {key[0] for key in groups}, {key[1] for key in groups}
    positions = {
        (p.instrument_id, p.product): p
        for p in Position.objects.filter(account_id=account.pk, instrument_id__in=instrument_ids, product__in=products)
    }
    # The groups' working orders in one read, as orders.margin.working_orders gives each group's.
    working: dict[tuple[int, str], list[tuple[str, int, Decimal]]] = defaultdict(list)
    for instrument_id, product, side, quantity, filled, price in Order.objects.filter(
        account_id=account.pk, instrument_id__in=instrument_ids, product__in=products, status__in=LIVE
    ).values_list("instrument_id", "product", "side", "quantity", "filled_quantity", "margin_price"):
        working[(instrument_id, product)].append((side, quantity - filled, price))
    total = Decimal(0)
    for (instrument_id, product), group in groups.items():
        position = positions.get((instrument_id, product))
        new = [(str(leg.request.side), leg.request.quantity, leg.price or Decimal(0)) for leg in group]
        proposed = group_margin(
            adapter=adapter,
            instrument=group[0].instrument,
            product=product,
            net=position.net_quantity if position else 0,
            average=position.average_price if position else Decimal(0),
            orders=[*working[(instrument_id, product)], *new],
        )
        total += proposed - (position.margin_blocked if position else Decimal(0))
    return total


def _available(account, adapter: BrokerAdapter) -> Decimal | None:
    """The account's available margin by the ledger, or the broker's cash before its ledger opens (as
    placing opens it); None when the broker cannot say now."""
    funds = Funds.objects.filter(account_id=account.pk).first()
    if funds is not None:
        return funds.available
    try:
        return adapter.funds().cash
    except BrokerError:
        return None


def order_preview(*, account, actor, requests: list[OrderRequest]) -> Preview:
    """Return what placing ``requests`` (one order, or a basket's legs in order) on ``account`` would
    block as margin and pay in charges, with the account's available margin beside.

    Raises OrderInvalid for a malformed leg (``check_legs``) and BrokerError when the broker's
    order-margins API cannot answer."""
    instruments = check_legs(account=account, actor=actor, requests=requests)
    quotes = get_quotes(list({i.pk for i in instruments}))
    legs = []
    with arithmetic_refused():
        for request, instrument in zip(requests, instruments, strict=True):
            quote = quotes.get(instrument.pk)
            price = _margin_price(request, quote.ltp if quote else None)
            legs.append(
                LegPreview(request, instrument, price, leg_charges(instrument=instrument, request=request, price=price))
            )
        adapter = adapter_for(account)
        if adapter.capabilities.margins:
            margin = adapter.order_margins(_broker_legs(legs))
            return Preview(legs, margin.quantize(CENT), _available(account, adapter), "broker", hedge=True)
        margin = _rules_margin(adapter=adapter, account=account, legs=legs)
    return Preview(legs, margin.quantize(CENT), _available(account, adapter), "rules", hedge=False)


def _broker_legs(legs: list[LegPreview]) -> list[MarginLeg]:
    return [
        MarginLeg(
            instrument_id=leg.instrument.pk,
            exchange=leg.instrument.exchange,
            tradingsymbol=leg.instrument.tradingsymbol,
            side=str(leg.request.side),
            quantity=leg.request.quantity,
            order_type=str(leg.request.order_type),
            product=str(leg.request.product),
            price=leg.request.price,
            trigger_price=leg.request.trigger_price,
            variety=str(leg.request.variety),
        )
        for leg in legs
    ]
