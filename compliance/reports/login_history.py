"""Login history: the organisation's members' sign-ins, failed passwords and one-time codes, lockouts
(django-axes locking a username from one address) and API sign-outs, with the client address, read
from the audit trail (where ``accounts`` records each). A failed password or a lockout has no user as
actor (nobody signed in): it belongs to the organisation when the username typed is a member's.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import reduce
from operator import or_

from django.core.paginator import Paginator
from django.db.models import Count, Max, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from accounts.models import Membership, Organisation
from audit.models import AuditEvent
from compliance.filters import LOGIN_EVENTS
from compliance.reports.scope import member_labels, scope_of
from compliance.selectors import IST, ist_bounds
from compliance.views import PAGE_SIZE, ReportFilters, _export, _report_page, report_views
from core.canonical_json import canonical_dumps

TEMPLATE = "compliance/login_history.html"
FIELDS = ("from", "to", "actor", "event", "ip")
PLATFORM_FIELDS = (*FIELDS, "org")
EVENT_OF_ACTION = {action: event for event, action in LOGIN_EVENTS.items()}
BY_USERNAME = ("auth.login_failed", "auth.lockout")  # recorded before anyone is signed in
HEADER = ("at_ist", "event", "username", "channel", "factor", "ip", "request_id")


def _typed_username(username: str) -> Q:
    """The events whose payload names ``username`` (canonical JSON: exactly this key and value)."""
    return Q(payload__contains=canonical_dumps({"username": username})[1:-1])


def login_event_list(
    *,
    organisation: Organisation | None,
    date_from,
    date_to,
    username: str = "",
    event: str = "",
    ip: str = "",
    up_to_id: int | None = None,
) -> QuerySet[AuditEvent]:
    """Return the sign-in events of the organisation's members (everyone's when None) in the IST range,
    newest first. ``username`` exact (the signed-in user, or the name typed), ``event`` one of
    LOGIN_EVENTS, ``ip`` the client address as recorded."""
    start, end = ist_bounds(date_from, date_to)
    actions = [LOGIN_EVENTS[event]] if event else list(LOGIN_EVENTS.values())
    events = AuditEvent.objects.filter(created_at__gte=start, created_at__lt=end, action__in=actions)
    if organisation is not None:
        usernames = list(Membership.objects.filter(organisation=organisation).values_list("user__username", flat=True))
        typed = reduce(or_, (_typed_username(name) for name in usernames), Q(pk__in=[]))
        events = events.filter(
            Q(actor__in=member_labels(organisation=organisation)) | (Q(action__in=BY_USERNAME) & typed)
        )
    if username:
        events = events.filter(Q(actor_name=username) | (Q(action__in=BY_USERNAME) & _typed_username(username)))
    if ip:
        events = events.filter(ip=ip)
    if up_to_id is not None:
        events = events.filter(id__lte=up_to_id)
    return events.order_by("-created_at", "-id")


def login_row(event: AuditEvent) -> dict:
    """One event as the report shows it: what happened, to whom, through which channel, from where."""
    data = event.payload_data
    return {
        "id": event.pk,
        "at": event.created_at,
        "event": EVENT_OF_ACTION.get(event.action, event.action),
        "username": event.actor_name or str(data.get("username", "")),
        "channel": str(data.get("channel", "")),
        "factor": str(data.get("factor", "")),
        "ip": event.ip or str(data.get("ip", "")),
        "request_id": event.request_id,
    }


def _kwargs(filters: ReportFilters, organisation) -> dict:
    extra = filters.extra
    return {
        "organisation": scope_of(organisation, extra),
        "date_from": filters.date_from,
        "date_to": filters.date_to,
        "username": extra.get("actor", ""),
        "event": extra.get("event", ""),
        "ip": extra.get("ip", ""),
    }


def _page(request: HttpRequest, slug: str, fields: tuple[str, ...]) -> HttpResponse:
    def results(filters: ReportFilters, organisation) -> dict:
        events = login_event_list(**_kwargs(filters, organisation))
        page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
        counts = dict(events.order_by().values_list("action").annotate(n=Count("id")))
        totals = [(event, counts.get(action, 0)) for event, action in LOGIN_EVENTS.items()]
        return {"page": page, "rows": [login_row(event) for event in page], "totals": totals, "events": LOGIN_EVENTS}

    return _report_page(request, slug, template=TEMPLATE, fields=fields, results=results)


def _rows(filters: ReportFilters, organisation) -> tuple[int, Iterator[tuple]]:
    found = login_event_list(**_kwargs(filters, organisation)).order_by().aggregate(rows=Count("id"), last=Max("id"))
    pinned = login_event_list(**_kwargs(filters, organisation), up_to_id=found["last"] or 0)

    def rows() -> Iterator[tuple]:
        for event in pinned.iterator(chunk_size=2000):
            row = login_row(event)
            at = timezone.localtime(row["at"], IST).strftime("%Y-%m-%d %H:%M:%S")
            yield (at, row["event"], row["username"], row["channel"], row["factor"], row["ip"], row["request_id"])

    return found["rows"], rows()


def _export_view(request: HttpRequest, slug: str, fields: tuple[str, ...]) -> HttpResponse:
    return _export(request, slug, template=TEMPLATE, fields=fields, report="login_history", rows=_rows, header=HEADER)


login_history, login_history_export, platform_login_history, platform_login_history_export = report_views(
    _page, _export_view, FIELDS, PLATFORM_FIELDS
)
