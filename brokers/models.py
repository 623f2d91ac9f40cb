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

    def __str__(self) -> str:
        return f"{self.broker}:{self.token} {self.exchange}:{self.tradingsymbol}"
