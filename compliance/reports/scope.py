"""Which audit events belong to an organisation, and the shared pieces of the reports read from the trail.

The trail names no organisation: an event has an actor label, a target and a payload. An organisation's
events are those whose actor is one of its current members, or whose target is the organisation, one of
its broker accounts, orders or memberships, or a kill switch over any of those. A former member's own
acts leave the organisation's view with them (they stay in the platform's, and in the trail).
"""

from __future__ import annotations

from datetime import date

from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast

from accounts.models import Membership, Organisation
from audit.models import AuditEvent
from brokers.models import BrokerAccount
from compliance.selectors import ist_bounds
from orders.models import Order
from rms.models import KillScope, KillSwitch


def member_labels(*, organisation: Organisation) -> list[str]:
    """The audit actor labels (``user:<id>``) of the organisation's current members."""
    return [
        f"user:{pk}" for pk in Membership.objects.filter(organisation=organisation).values_list("user_id", flat=True)
    ]


def kill_switch_keys(*, organisation: Organisation) -> list[str]:
    """The keys of every kill switch over the organisation: global, its own, its accounts' and its members'."""
    accounts = BrokerAccount.objects.filter(organisation=organisation).values_list("pk", flat=True)
    members = Membership.objects.filter(organisation=organisation).values_list("user_id", flat=True)
    return [
        KillScope.GLOBAL,
        f"{KillScope.ORGANISATION}:{organisation.pk}",
        *(f"{KillScope.ACCOUNT}:{pk}" for pk in accounts),
        *(f"{KillScope.USER}:{pk}" for pk in members),
    ]


def _text_ids(queryset: QuerySet) -> QuerySet:
    """The primary keys of ``queryset`` as text, a subquery to compare with ``AuditEvent.target_id``."""
    return queryset.annotate(text_id=Cast("pk", CharField(max_length=64))).values("text_id")


def organisation_events_q(*, organisation: Organisation) -> Q:
    """The condition on AuditEvent rows that keeps the organisation's events (the module's docstring)."""
    accounts = BrokerAccount.objects.filter(organisation=organisation)
    return (
        Q(actor__in=member_labels(organisation=organisation))
        | Q(target_type="accounts.organisation", target_id=str(organisation.pk))
        | Q(target_type="brokers.brokeraccount", target_id__in=_text_ids(accounts))
        | Q(target_type="orders.order", target_id__in=_text_ids(Order.objects.filter(account__in=accounts)))
        | Q(
            target_type="accounts.membership",
            target_id__in=_text_ids(Membership.objects.filter(organisation=organisation)),
        )
        | Q(target_type="accounts.membership", target_id__startswith=f"{organisation.pk}:")
        | Q(
            target_type="rms.killswitch",
            target_id__in=_text_ids(KillSwitch.objects.filter(key__in=kill_switch_keys(organisation=organisation))),
        )
    )


def events_in_range(*, organisation: Organisation | None, date_from: date, date_to: date) -> QuerySet[AuditEvent]:
    """The audit events recorded in the IST range, of the organisation (every event when None)."""
    start, end = ist_bounds(date_from, date_to)
    events = AuditEvent.objects.filter(created_at__gte=start, created_at__lt=end)
    if organisation is not None:
        events = events.filter(organisation_events_q(organisation=organisation))
    return events


def scope_of(organisation: Organisation | None, extra: dict) -> Organisation | None:
    """The organisation a report reads: the page's own, or on the platform's page its ``org`` filter (None: all)."""
    return organisation if organisation is not None else extra.get("org")
