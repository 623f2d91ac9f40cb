"""Kill-switch events: every time a kill switch over the organisation (global, the organisation, one of
its accounts or members) was engaged or lifted, by whom, why and from where, from the audit trail
(``rms.kill_switch_on`` and ``rms.kill_switch_off``; the switch itself keeps only its latest state).
"""

from __future__ import annotations

from collections.abc import Iterator

from django.core.paginator import Paginator
from django.db.models import CharField, Count, Max, QuerySet
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from accounts.models import Organisation
from audit.models import AuditEvent
from compliance.filters import KILL_SWITCH_EVENTS
from compliance.reports.scope import kill_switch_keys, scope_of
from compliance.selectors import IST, ist_bounds
from compliance.views import PAGE_SIZE, ReportFilters, _export, _report_page, report_views
from rms.models import KillSwitch

TITLE = "Kill-switch events"  # the title its PDF and XLSX exports carry
TEMPLATE = "compliance/kill_switch_events.html"
FIELDS = ("from", "to", "state", "actor")
PLATFORM_FIELDS = (*FIELDS, "org")
STATE_OF_ACTION = {action: state for state, action in KILL_SWITCH_EVENTS.items()}
HEADER = ("at_ist", "state", "switch", "reason", "actor", "actor_name", "ip")


def kill_switch_event_list(
    *,
    organisation: Organisation | None,
    date_from,
    date_to,
    state: str = "",
    actor: str = "",
    up_to_id: int | None = None,
) -> QuerySet[AuditEvent]:
    """Return the engagements and releases of the kill switches over the organisation (every switch when
    None) in the IST range, newest first; ``state`` ``on`` or ``off``, ``actor`` a username as recorded."""
    start, end = ist_bounds(date_from, date_to)
    actions = [KILL_SWITCH_EVENTS[state]] if state else list(KILL_SWITCH_EVENTS.values())
    events = AuditEvent.objects.filter(created_at__gte=start, created_at__lt=end, action__in=actions)
    if organisation is not None:
        switches = KillSwitch.objects.filter(key__in=kill_switch_keys(organisation=organisation))
        ids = switches.annotate(text_id=Cast("pk", CharField(max_length=64))).values("text_id")
        events = events.filter(target_type="rms.killswitch", target_id__in=ids)
    if actor:
        events = events.filter(actor_name=actor)
    if up_to_id is not None:
        events = events.filter(id__lte=up_to_id)
    return events.order_by("-created_at", "-id")


def kill_switch_row(event: AuditEvent) -> dict:
    data = event.payload_data
    return {
        "id": event.pk,
        "at": event.created_at,
        "state": STATE_OF_ACTION.get(event.action, event.action),
        "switch": str(data.get("key", "")),
        "reason": str(data.get("reason", "")),
        "actor": event.actor,
        "actor_name": event.actor_name,
        "ip": event.ip,
    }


def _kwargs(filters: ReportFilters, organisation) -> dict:
    extra = filters.extra
    return {
        "organisation": scope_of(organisation, extra),
        "date_from": filters.date_from,
        "date_to": filters.date_to,
        "state": extra.get("state", ""),
        "actor": extra.get("actor", ""),
    }


def _page(request: HttpRequest, slug: str, fields: tuple[str, ...]) -> HttpResponse:
    def results(filters: ReportFilters, organisation) -> dict:
        events = kill_switch_event_list(**_kwargs(filters, organisation))
        page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
        return {"page": page, "rows": [kill_switch_row(event) for event in page], "states": KILL_SWITCH_EVENTS}

    return _report_page(request, slug, template=TEMPLATE, fields=fields, results=results)


def _rows(filters: ReportFilters, organisation) -> tuple[int, Iterator[tuple]]:
    events = kill_switch_event_list(**_kwargs(filters, organisation))
    found = events.order_by().aggregate(rows=Count("id"), last=Max("id"))
    pinned = kill_switch_event_list(**_kwargs(filters, organisation), up_to_id=found["last"] or 0)

    def rows() -> Iterator[tuple]:
        for event in pinned.iterator(chunk_size=2000):
            row = kill_switch_row(event)
            at = timezone.localtime(row["at"], IST).strftime("%Y-%m-%d %H:%M:%S")
            yield (at, row["state"], row["switch"], row["reason"], row["actor"], row["actor_name"], row["ip"])

    return found["rows"], rows()


def _export_view(request: HttpRequest, slug: str, fields: tuple[str, ...]) -> HttpResponse:
    return _export(
        request,
        slug,
        template=TEMPLATE,
        fields=fields,
        report="kill_switch_events",
        rows=_rows,
        header=HEADER,
        title=TITLE,
    )


kill_switch_events, kill_switch_events_export, platform_kill_switch_events, platform_kill_switch_events_export = (
    report_views(_page, _export_view, FIELDS, PLATFORM_FIELDS)
)
