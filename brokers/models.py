from django.db import models

from brokers.errors import BrokerAccountModeFixed


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

    def save(self, *args, **kwargs) -> None:
        """Save; raises BrokerAccountModeFixed when an existing account's broker would change: paper
        and live never mix, so an account's broker, and with it its mode, is fixed at creation."""
        if self.pk is not None and not self._state.adding:
            stored = type(self).objects.filter(pk=self.pk).values_list("broker", flat=True).first()
            if stored is not None and stored != self.broker:
                raise BrokerAccountModeFixed(
                    f"The account's broker is {stored!r} and cannot become {self.broker!r}: open a new account.",
                    extra={"broker": stored},
                )
        super().save(*args, **kwargs)

    @property
    def is_paper(self) -> bool:
        """Whether the account trades on the paper exchange (its mode, fixed at creation)."""
        return self.broker == "paper"

    @property
    def credentials_binding(self) -> bytes:
        """The associated data that ties this row's ciphertext to it (see brokers.crypto)."""
        return f"brokeraccount|{self.organisation_id}|{self.broker}|{self.client_code}|credentials".encode()


class BrokerSession(models.Model):
    """A broker account's current session at its broker (for families with a daily login): the
    access token and whatever else the broker gave at sign-in, sealed by brokers.crypto and bound to
    this account; when it ends. One row per account, replaced by each sign-in."""

    class State(models.TextChoices):
        LIVE = "live", "Live"
        ENDED = "ended", "Ended"  # expired at the broker's daily cut-off, refused by the broker, or signed out

    account = models.OneToOneField(BrokerAccount, on_delete=models.CASCADE, related_name="session")
    state = models.CharField(max_length=8, choices=State.choices, default=State.LIVE)
    secrets_ciphertext = models.TextField(editable=False)
    started_at = models.DateTimeField()
    expires_at = models.DateTimeField(help_text="When the broker ends the session (Kite: 06:00 IST the next morning).")
    ended_at = models.DateTimeField(null=True, blank=True)
    ended_reason = models.CharField(max_length=200, blank=True)

    def __str__(self) -> str:
        return f"session of account {self.account_id}: {self.state} until {self.expires_at:%Y-%m-%d %H:%M}"

    @property
    def secrets_binding(self) -> bytes:
        """The associated data that ties the sealed secrets to this account (see brokers.crypto)."""
        return f"brokersession|{self.account_id}|session".encode()


class InboundUpdate(models.Model):
    """A broker's order update as received (a postback, an order message on the broker's websocket,
    a row read back by a poll), kept until the order system has applied it: receiving commits this
    row before the broker is answered, and applying marks it, so a process killed in between loses
    nothing (the update is applied again, and applying is idempotent). Applied in id order."""

    account = models.ForeignKey(BrokerAccount, on_delete=models.PROTECT, related_name="+", db_index=False)
    source = models.CharField(max_length=16, help_text="postback, websocket or poll")
    update = models.JSONField(help_text="The BrokerUpdate, its numbers as strings.")
    # A digest of the message as received, where the source can repeat one (a postback replayed):
    # unique, so a replay is refused instead of queued.
    digest = models.CharField(max_length=64, null=True, blank=True, unique=True)
    received_at = models.DateTimeField()
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # What is still to apply, oldest first: a small partial index however long the table grows.
            models.Index(fields=["id"], name="inboundupdate_pending", condition=models.Q(applied_at__isnull=True))
        ]

    def __str__(self) -> str:
        return f"{self.source} update {self.pk} for account {self.account_id}"


class BrokerInstrument(models.Model):
    """One instrument of our symbol master as one broker family names it: the broker's token and its
    spelling of the trading symbol and exchange. Written by the broker's symbol-master import (the
    mapping mirrors the broker's current file), read through ``brokers.selectors.instrument_map``."""

    broker = models.CharField(max_length=40, help_text="Broker family code from the broker registry, e.g. 'kite'.")
    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.PROTECT, related_name="+")
    token = models.CharField(max_length=64, help_text="The broker's instrument token (Kite: instrument_token).")
    tradingsymbol = models.CharField(max_length=64, help_text="The trading symbol as the broker spells it.")
    exchange = models.CharField(max_length=16, help_text="The exchange as the broker spells it.")
    listed_at = models.DateTimeField(help_text="Start of the last import whose file listed this instrument.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["broker", "instrument"], name="brokerinstrument_unique_instrument"),
            models.UniqueConstraint(fields=["broker", "token"], name="brokerinstrument_unique_token"),
        ]
        # When a family's master was last loaded (its newest listed_at) is read at each metrics scrape:
        # one index step, not a scan of the family's rows.
        indexes = [models.Index(fields=["broker", "listed_at"], name="brokerinstrument_listed_at")]

    def __str__(self) -> str:
        return f"{self.broker}:{self.token} {self.exchange}:{self.tradingsymbol}"
