"""The paper exchange's own book: its orders and their fills, in this database so that the process
that places an order (web, API, worker) and the process that matches it on ticks (the feed) share it.
Nothing outside this app reads these tables: the order system sees the paper exchange only through the
broker contract (``paper.adapter.PaperAdapter``)."""

from django.db import models


class PaperOrder(models.Model):
    """An order resting in (or done at) the paper exchange."""

    # Indexed by the unique (account, tag) and (instrument, status) below; each index
    # is written by every order and fill, so there are no single-column copies.
    account = models.ForeignKey(
        "brokers.BrokerAccount", on_delete=models.PROTECT, related_name="paper_orders", db_index=False
    )
    tag = models.CharField(max_length=64, help_text="The OMS's order tag; the paper exchange's idempotency key.")
    broker_order_id = models.CharField(max_length=32)  # unique: a constraint below (no LIKE-pattern index)
    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.PROTECT, related_name="+", db_index=False)
    side = models.CharField(max_length=4)
    quantity = models.PositiveIntegerField()
    filled_quantity = models.PositiveIntegerField(default=0)
    average_price = models.DecimalField(max_digits=16, decimal_places=4, null=True, blank=True)
    order_type = models.CharField(max_length=8)
    product = models.CharField(max_length=8)
    validity = models.CharField(max_length=4)
    price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    trigger_price = models.DecimalField(max_digits=14, decimal_places=4, null=True, blank=True)
    status = models.CharField(max_length=20)
    message = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "tag"], name="paperorder_unique_tag"),
            models.UniqueConstraint(fields=["broker_order_id"], name="paperorder_unique_broker_order_id"),
            models.CheckConstraint(
                condition=models.Q(filled_quantity__lte=models.F("quantity")), name="paperorder_no_overfill"
            ),
        ]
        indexes = [models.Index(fields=["instrument", "status"], name="paperorder_instrument_status")]

    def __str__(self) -> str:
        return f"paper {self.broker_order_id} {self.side} {self.quantity} {self.status}"


class PaperFill(models.Model):
    """One fill of a paper order; its ``trade_id`` is the trade id the order system records."""

    order = models.ForeignKey(PaperOrder, on_delete=models.PROTECT, related_name="fills")
    trade_id = models.CharField(max_length=40, unique=True)
    quantity = models.PositiveIntegerField()
    price = models.DecimalField(max_digits=14, decimal_places=4)
    ts = models.DateTimeField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.trade_id}: {self.quantity} @ {self.price}"
