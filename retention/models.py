"""The retention policy the database enforces, and the legal holds on organisations.

Deleting an order, an order event or a trade is refused by database triggers (migration 0002) while the
row is younger than the window in ``RetentionPolicy`` or its organisation is under an active
``LegalHold``. The audit trail is stricter still: its own triggers refuse every delete (audit migration
0002), so it is kept for ever in the database and archived as a copy.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class RetentionPolicy(models.Model):
    """The one row the retention triggers read: how many years rows are kept at least.

    Written from ``settings.RETENTION_YEARS`` after every ``migrate`` (as the owner role) and by
    ``manage.py retention_policy``; the application role may only read it (deploy/postgres/app_role.sql),
    so a compromised application cannot shorten the window. The database refuses fewer than 5 years.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    years = models.PositiveSmallIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "retention_policy"
        verbose_name_plural = "retention policy"
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="retention_policy_one_row"),
            models.CheckConstraint(condition=Q(years__gte=5), name="retention_policy_at_least_5_years"),
        ]

    def __str__(self) -> str:
        return f"keep {self.years} years"


class LegalHold(models.Model):
    """A legal hold on an organisation: while active none of its orders, order events or trades may be
    deleted, however old. Changed only by platform staff in the admin, each change audited."""

    organisation = models.OneToOneField("accounts.Organisation", on_delete=models.PROTECT, related_name="legal_hold")
    active = models.BooleanField(default=True)
    reason = models.CharField(max_length=300, help_text="The matter, order or notice the hold is for.")
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    changed_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "retention_legalhold"

    def __str__(self) -> str:
        return f"legal hold on {self.organisation} ({'active' if self.active else 'lifted'})"
