from django.db import models


class BrokerAccount(models.Model):
    """One trading account at one broker, owned by an organisation.

    Reached only through ``brokers.selectors.account_get_for_user``, which applies the roles and the
    per-account grants (object permissions ``view_brokeraccount`` and ``trade_brokeraccount``).
    """

    organisation = models.ForeignKey("accounts.Organisation", on_delete=models.PROTECT, related_name="broker_accounts")
    label = models.CharField(max_length=100, help_text="How traders see this account, e.g. 'Zerodha main'.")
    broker = models.CharField(max_length=40, help_text="Broker code from the broker registry, e.g. 'paper'.")
    client_code = models.CharField(max_length=64, help_text="The client id at the broker.")
    is_active = models.BooleanField(default=True)
    # API key, secret, access token...: a JSON object sealed by brokers.crypto; never stored in clear.
    credentials_ciphertext = models.TextField(blank=True, default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        permissions = [("trade_brokeraccount", "Can place, modify and cancel orders through the broker account")]
        constraints = [
            models.UniqueConstraint(fields=["broker", "client_code"], name="brokeraccount_unique_client_per_broker")
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.broker}:{self.client_code})"

    @property
    def credentials_binding(self) -> bytes:
        """The associated data that ties this row's ciphertext to it (see brokers.crypto)."""
        return f"brokeraccount|{self.organisation_id}|{self.broker}|{self.client_code}|credentials".encode()


class PaperOrder(models.Model):
    """An order resting in (or done at) the paper exchange: the simulated broker's own order book.

    The paper exchange keeps its book in the database so that the process that places an order (web,
    API, worker) and the process that matches it on ticks (the feed) share one book.
    """

    # Indexed by the unique (account, client order id) and (instrument, status) below; each index
    # is written by every order and fill, so there are no single-column copies.
    account = models.ForeignKey(BrokerAccount, on_delete=models.PROTECT, related_name="paper_orders", db_index=False)
    client_order_id = models.CharField(max_length=64, help_text="The OMS's tag; the paper exchange's idempotency key.")
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
            models.UniqueConstraint(fields=["account", "client_order_id"], name="paperorder_unique_client_id"),
            models.UniqueConstraint(fields=["broker_order_id"], name="paperorder_unique_broker_order_id"),
            models.CheckConstraint(
                condition=models.Q(filled_quantity__lte=models.F("quantity")), name="paperorder_no_overfill"
            ),
        ]
        indexes = [models.Index(fields=["instrument", "status"], name="paperorder_instrument_status")]

    def __str__(self) -> str:
        return f"paper {self.broker_order_id} {self.side} {self.quantity} {self.status}"


class PaperFill(models.Model):
    order = models.ForeignKey(PaperOrder, on_delete=models.PROTECT, related_name="fills")
    trade_id = models.CharField(max_length=40, unique=True)
    quantity = models.PositiveIntegerField()
    price = models.DecimalField(max_digits=14, decimal_places=4)
    ts = models.DateTimeField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.trade_id}: {self.quantity} @ {self.price}"
