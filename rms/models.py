"""Risk limits and kill switches."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

# Every limit a RiskLimit row can set, with its label on pages and in error messages.
LIMIT_FIELDS = {
    "max_order_quantity": "Max order quantity",
    "max_order_value": "Max order value (₹)",
    "max_open_orders": "Max open orders",
    "max_daily_loss": "Max daily loss (₹)",
    "max_orders_per_second": "Max orders per second",
    "max_ltp_deviation_pct": "Max % from LTP",
    "allowed_exchanges": "Allowed exchanges",
    "allowed_products": "Allowed products",
}


class RiskLimit(models.Model):
    """A set of limits for one scope: everyone (no scope field set), an organisation, an account, a user
    (everywhere, or within one organisation: ``organisation`` and ``user`` both set) or a strategy. A
    field left empty sets no limit at that scope; a row with every field empty is the same as no row.

    Every limit that applies to an order is enforced: for each rule the strictest value among the
    applicable scopes wins (the smallest number, the intersection of allowed sets), so a narrower scope
    can tighten but never loosen what a wider one set (docs/rms.md).
    """

    organisation = models.ForeignKey("accounts.Organisation", null=True, blank=True, on_delete=models.CASCADE)
    account = models.ForeignKey("brokers.BrokerAccount", null=True, blank=True, on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE)
    strategy = models.CharField(max_length=64, blank=True)
    max_order_quantity = models.PositiveIntegerField(null=True, blank=True)
    # 15 significant digits (below ₹10 lakh crore): what SQLite, the standalone database, stores exactly.
    max_order_value = models.DecimalField(max_digits=15, decimal_places=2, null=True, blank=True)
    max_open_orders = models.PositiveIntegerField(null=True, blank=True)
    max_daily_loss = models.DecimalField(max_digits=15, decimal_places=2, null=True, blank=True)
    max_orders_per_second = models.PositiveIntegerField(null=True, blank=True)
    max_ltp_deviation_pct = models.DecimalField(
        max_digits=6,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="A limit price further than this % from LTP is rejected.",
    )
    allowed_exchanges = models.CharField(max_length=100, blank=True, help_text="Comma-separated; empty allows all.")
    allowed_products = models.CharField(max_length=40, blank=True, help_text="Comma-separated; empty allows all.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(organisation__isnull=True, account__isnull=True, user__isnull=True)
                    | Q(organisation__isnull=False, account__isnull=True, user__isnull=True, strategy="")
                    | Q(organisation__isnull=True, account__isnull=False, user__isnull=True, strategy="")
                    | Q(organisation__isnull=True, account__isnull=True, user__isnull=False, strategy="")
                    | Q(organisation__isnull=False, account__isnull=True, user__isnull=False, strategy="")
                ),
                name="risklimit_one_scope",
            )
        ]

    def __str__(self) -> str:
        return f"limits for {self.scope_label}"

    @property
    def scope_label(self) -> str:
        if self.organisation_id and self.user_id:
            return f"user {self.user_id} in organisation {self.organisation_id}"
        if self.organisation_id:
            return f"organisation {self.organisation_id}"
        if self.account_id:
            return f"account {self.account_id}"
        if self.user_id:
            return f"user {self.user_id}"
        if self.strategy:
            return f"strategy {self.strategy}"
        return "everyone"


class LimitScope(models.TextChoices):
    """The scopes an organisation's Owner and Admins set limits for (rms.services.risk_limit_set)."""

    ORGANISATION = "organisation", "Organisation"
    ACCOUNT = "account", "Broker account"
    USER = "user", "Member"


class KillScope(models.TextChoices):
    GLOBAL = "global", "Global"
    ORGANISATION = "organisation", "Organisation"
    ACCOUNT = "account", "Account"
    USER = "user", "User"


class KillSwitch(models.Model):
    """One kill switch per target (``global``, ``organisation:<id>``, ``account:<id>``, ``user:<id>``).

    While active, no new order passes the pre-trade check for anything in its scope. Engaging it also
    cancels open orders and squares off positions; only an Owner or Admin (a superuser for global) lifts it.
    """

    scope = models.CharField(max_length=16, choices=KillScope.choices)
    target_id = models.BigIntegerField(null=True, blank=True)
    key = models.CharField(max_length=40, unique=True)
    active = models.BooleanField(default=False, db_index=True)
    reason = models.CharField(max_length=300, blank=True)
    engaged_by = models.CharField(max_length=150, blank=True)
    engaged_at = models.DateTimeField(null=True, blank=True)
    released_by = models.CharField(max_length=150, blank=True)
    released_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"kill switch {self.key} ({'on' if self.active else 'off'})"

    @staticmethod
    def key_for(scope: str, target_id: int | None) -> str:
        return scope if scope == KillScope.GLOBAL else f"{scope}:{target_id}"
