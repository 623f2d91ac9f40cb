"""Orders, their events, trades, positions and the funds (margin) ledger of each broker account."""

from __future__ import annotations

import secrets
import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from marketdata.models import Product  # the product types, beside the exchanges; orders.models.Product still names it
from orders import positions
from orders.states import LIVE, Status


class Side(models.TextChoices):
    BUY = "BUY", "Buy"
    SELL = "SELL", "Sell"


class OrderType(models.TextChoices):
    MARKET = "MARKET", "Market"
    LIMIT = "LIMIT", "Limit"
    SL = "SL", "Stop-loss limit"
    SL_M = "SL-M", "Stop-loss market"


class Validity(models.TextChoices):
    DAY = "DAY", "Day"
    IOC = "IOC", "Immediate or cancel"


class Variety(models.TextChoices):
    """How the broker handles the order (Kite's varieties); a broker family declares those it takes."""

    REGULAR = "regular", "Regular"
    AMO = "amo", "After-market order"
    CO = "co", "Cover order"
    ICEBERG = "iceberg", "Iceberg"


class Source(models.TextChoices):
    WEB = "web", "Web"
    API = "api", "API"
    STRATEGY = "strategy", "Strategy"
    WEBHOOK = "webhook", "Webhook"
    SYSTEM = "system", "System (square-off, kill switch)"
    ALERT = "alert", "Alert trigger order"


def new_broker_tag() -> str:
    """A fresh order tag: 20 hexadecimal digits (80 random bits)."""
    return secrets.token_hex(10)


class Order(models.Model):
    """One order to one broker. Its status moves only along ``orders.states.ALLOWED``."""

    client_order_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # What brokers know the order by: short enough for every broker's tag field (Kite keeps 20
    # letters and digits), unique, so an update or an order-book row finds the order by index.
    broker_tag = models.CharField(max_length=20, unique=True, default=new_broker_tag, editable=False)
    # NULL, not "", for "no key": the unique constraint must ignore orders placed without one.
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001
    # Indexed by (account, status) below: a separate account index would only cost every write.
    account = models.ForeignKey(
        "brokers.BrokerAccount", on_delete=models.PROTECT, related_name="orders", db_index=False
    )
    placed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.PROTECT, related_name="+")
    side = models.CharField(max_length=4, choices=Side.choices)
    quantity = models.PositiveIntegerField()
    filled_quantity = models.PositiveIntegerField(default=0)
    average_price = models.DecimalField(max_digits=16, decimal_places=4, null=True, blank=True)
    order_type = models.CharField(max_length=8, choices=OrderType.choices)
    product = models.CharField(max_length=4, choices=Product.choices)
    validity = models.CharField(max_length=4, choices=Validity.choices, default=Validity.DAY)
    variety = models.CharField(max_length=8, choices=Variety.choices, default=Variety.REGULAR)
    iceberg_legs = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Iceberg orders: legs (2 to 10).")
    iceberg_quantity = models.PositiveIntegerField(null=True, blank=True, help_text="Iceberg orders: quantity per leg.")
    price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    trigger_price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    margin_price = models.DecimalField(
        max_digits=14, decimal_places=4, help_text="Price used to block margin (limit price, else LTP at placement)."
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    broker_order_id = models.CharField(max_length=64, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When the OMS handed it to the broker.")
    message = models.CharField(max_length=300, blank=True)
    tag = models.CharField(max_length=40, blank=True)
    algo_id = models.CharField(
        max_length=40, blank=True, help_text="Exchange algo id (generic for unregistered algos)."
    )
    strategy = models.CharField(max_length=64, blank=True, help_text="Strategy that placed it, for RMS limits.")
    source = models.CharField(max_length=10, choices=Source.choices)
    slice_group = models.UUIDField(null=True, blank=True, help_text="Shared by the child orders of one sliced order.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="order_unique_idempotency_key",
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="order_quantity_positive"),
            models.CheckConstraint(condition=Q(filled_quantity__lte=F("quantity")), name="order_no_overfill"),
        ]
        # Every order's insert and status change writes each index, so there are only those a query
        # needs: no LIKE-pattern copies of the text columns, and the sweeps across accounts
        # (reconciliation, the intraday square-off) read a partial index of the live orders only.
        indexes = [
            models.Index(fields=["account", "status"], name="order_account_status"),
            models.Index(fields=["broker_order_id"], name="order_broker_order_id"),
            models.Index(
                fields=["status"],
                name="order_live_status",
                condition=Q(status__in=sorted(LIVE)),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity} {self.instrument_id} {self.order_type} [{self.status}]"

    @property
    def remaining(self) -> int:
        return self.quantity - self.filled_quantity

    @property
    def is_buy(self) -> bool:
        return self.side == Side.BUY


BROKER_UNANSWERED = "broker_unanswered"  # OrderEvent kind: a modify or cancel the broker never answered
# OrderEvent kind: the broker reported more filled than the trades recorded, without the trades (Kite's
# postbacks and order messages carry the filled quantity, not trade ids): reconciliation fetches them.
FILLS_TO_FETCH = "fills_to_fetch"


class OrderEvent(models.Model):
    """Every transition and act on an order, in order: the order's own history."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    # placed, sent, ack, fill, modify, cancel_request, broker_update, broker_unanswered, reconcile, ...
    kind = models.CharField(max_length=24)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20, blank=True)
    message = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.from_status}->{self.to_status}"


class Trade(models.Model):
    """One fill of one order, as the broker reported it. Exchanges number their trades each on its own
    (NSE, BSE and NFO reuse ids), so a trade is unique by (account, exchange, trade id)."""

    account = models.ForeignKey(  # indexed by the unique (account, exchange, broker trade id)
        "brokers.BrokerAccount", on_delete=models.PROTECT, related_name="trades", db_index=False
    )
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="trades")
    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.PROTECT, related_name="+")
    product = models.CharField(max_length=4, choices=Product.choices)
    side = models.CharField(max_length=4, choices=Side.choices)
    quantity = models.PositiveIntegerField()
    price = models.DecimalField(max_digits=14, decimal_places=4)
    exchange = models.CharField(max_length=8, help_text="The exchange that numbered the trade (NSE, BSE, NFO...).")
    broker_trade_id = models.CharField(max_length=64)
    executed_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "exchange", "broker_trade_id"], name="trade_unique_exchange_trade_id"
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="trade_quantity_positive"),
        ]
        # The trader's reports (P&L, tradebook, tax P&L) read an account's trades by execution time.
        indexes = [models.Index(fields=["account", "executed_at"], name="trade_account_executed")]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity} @ {self.price} ({self.broker_trade_id})"


class Position(models.Model):
    """Net position per (account, instrument, product), kept equal to the sum of its trades.

    ``margin_blocked`` is the margin this instrument and product hold (position plus working orders);
    the account's ``Funds.margin_blocked`` is the sum over its positions.
    """

    account = models.ForeignKey(  # indexed by the unique (account, instrument, product)
        "brokers.BrokerAccount", on_delete=models.PROTECT, related_name="positions", db_index=False
    )
    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.PROTECT, related_name="+")
    product = models.CharField(max_length=4, choices=Product.choices)
    net_quantity = models.IntegerField(default=0)
    average_price = models.DecimalField(max_digits=16, decimal_places=4, default=Decimal(0))
    realised_pnl = models.DecimalField(max_digits=18, decimal_places=4, default=Decimal(0))
    buy_quantity = models.PositiveIntegerField(default=0)
    buy_value = models.DecimalField(max_digits=20, decimal_places=4, default=Decimal(0))
    sell_quantity = models.PositiveIntegerField(default=0)
    sell_value = models.DecimalField(max_digits=20, decimal_places=4, default=Decimal(0))
    margin_blocked = models.DecimalField(max_digits=18, decimal_places=4, default=Decimal(0))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "instrument", "product"], name="position_unique_key"),
            models.CheckConstraint(condition=Q(margin_blocked__gte=0), name="position_margin_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.instrument_id} {self.product} net {self.net_quantity}"

    def unrealised_pnl(self, ltp: Decimal | None) -> Decimal:
        """Return the mark-to-market P&L of the open quantity at ``ltp`` (zero without a price)."""
        return positions.unrealised_pnl(self.net_quantity, self.average_price, ltp)


class Funds(models.Model):
    """The account's cash and margin ledger; its row is also the account's lock (orders.locks)."""

    account = models.OneToOneField("brokers.BrokerAccount", on_delete=models.PROTECT, related_name="funds")
    opening_balance = models.DecimalField(max_digits=18, decimal_places=4)
    realised_pnl = models.DecimalField(max_digits=18, decimal_places=4, default=Decimal(0))
    realised_today = models.DecimalField(max_digits=18, decimal_places=4, default=Decimal(0))
    trading_day = models.DateField(null=True, blank=True, help_text="The IST day realised_today belongs to.")
    margin_blocked = models.DecimalField(max_digits=18, decimal_places=4, default=Decimal(0))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "funds"
        constraints = [models.CheckConstraint(condition=Q(margin_blocked__gte=0), name="funds_margin_not_negative")]

    def __str__(self) -> str:
        return f"funds of account {self.account_id}"

    @property
    def available(self) -> Decimal:
        return self.opening_balance + self.realised_pnl - self.margin_blocked


class Basket(models.Model):
    """A basket placed with an Idempotency-Key, and what became of each leg: a repeat of the same request
    returns this outcome and places nothing, whether each leg was placed or refused the first time."""

    account = models.ForeignKey("brokers.BrokerAccount", on_delete=models.PROTECT, related_name="+")
    idempotency_key = models.CharField(max_length=100)
    fingerprint = models.CharField(max_length=64, help_text="SHA-256 of the legs as requested.")
    # One entry a leg: {"orders": [order ids], "error": {"code", "message", "extra"} | null}; null while
    # the basket is being placed.
    outcome = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "idempotency_key"], name="basket_unique_idempotency_key")
        ]

    def __str__(self) -> str:
        return f"basket {self.idempotency_key} of account {self.account_id}"


class GttPlacement(models.Model):
    """A GTT placed with an idempotency key (the GTT form's one-time token): a repeat of the key returns
    the first GTT's trigger id and places nothing. ``trigger_id`` is empty while the broker is asked, and
    stays empty when its answer was lost (the GTT may exist: the broker's GTT book says)."""

    account = models.ForeignKey("brokers.BrokerAccount", on_delete=models.PROTECT, related_name="+")
    idempotency_key = models.CharField(max_length=100)
    trigger_id = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "idempotency_key"], name="gttplacement_unique_idempotency_key")
        ]

    def __str__(self) -> str:
        return f"GTT {self.trigger_id or '(pending)'} of account {self.account_id} for key {self.idempotency_key}"
