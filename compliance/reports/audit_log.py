"""The audit-log browser: the organisation's audit events (the platform's every event) filtered by actor,
action, target and IST days, newest first and paginated, with the chain's latest verification (the
newest ``audit.verified`` event, recorded by ``audit.tasks.audit_verify``, which the page can start)
and the newest signed checkpoint. A page view never recomputes the chains: that reads the whole trail.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from django.contrib import messages
from django.core.cache import cache
from django.core.paginator import Paginator
from django.db.models import Count, Max, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts.models import Organisation
from audit.checkpoints import Checkpoint, checkpoint_names, read_checkpoint
from audit.errors import CheckpointError
from audit.models import AuditEvent
from audit.tasks import VERIFY_LOCK, VERIFY_LOCK_SECONDS, audit_verify
from compliance.access import PLATFORM
from compliance.reports.scope import events_in_range, scope_of
from compliance.selectors import IST
from compliance.views import PAGE_SIZE, ReportFilters, _export, _organisation, _report_page, verified_required

TEMPLATE = "compliance/audit_log.html"
FIELDS = ("from", "to", "actor", "action", "target")
PLATFORM_FIELDS = (*FIELDS, "org")
ACTOR_LABEL_RE = re.compile(r"^(user:\d+|anonymous|system(:[a-z0-9_]+)*)$")
HEADER = (
    "created_at_ist",
    "chain",
    "seq",
    "actor",
    "actor_name",
    "action",
    "target_type",
    "target_id",
    "ip",
    "request_id",
    "payload",
    "hash",
)


def audit_event_list(
    *,
    organisation: Organisation | None,
    date_from,
    date_to,
    actor: str = "",
    action: str = "",
    target: str = "",
    up_to_id: int | None = None,
) -> QuerySet[AuditEvent]:
    """Return the audit events of the organisation (every event when None) recorded in the IST range,
    newest first. ``actor`` is an audit label (``user:42``, ``system:rms``, ``anonymous``) or a username
    as recorded; ``action`` exact, or a prefix when it ends with a dot (``auth.``); ``target`` a type
    (``brokers.brokeraccount``) or ``type:id``. ``up_to_id`` pins an export to the rows it counted."""
    events = events_in_range(organisation=organisation, date_from=date_from, date_to=date_to)
    if actor:
        events = events.filter(actor=actor) if ACTOR_LABEL_RE.match(actor) else events.filter(actor_name=actor)
    if action:
        events = events.filter(action__startswith=action) if action.endswith(".") else events.filter(action=action)
    if target:
        target_type, _, target_id = target.partition(":")
        events = events.filter(target_type=target_type)
        if target_id:
            events = events.filter(target_id=target_id)
    if up_to_id is not None:
        events = events.filter(id__lte=up_to_id)
    return events.order_by("-created_at", "-id")


def _kwargs(filters: ReportFilters, organisation: Organisation | None) -> dict:
    extra = filters.extra
    return {
        "organisation": scope_of(organisation, extra),
        "date_from": filters.date_from,
        "date_to": filters.date_to,
        "actor": extra.get("actor", ""),
        "action": extra.get("action", ""),
        "target": extra.get("target", ""),
    }


@dataclass(frozen=True, slots=True)
class Verification:
    """The newest recorded verification of the trail, as its ``audit.verified`` event holds it."""

    at: object
    ok: bool
    verified: int
    checkpoints: int
    breaks: list
    problems: list
    requested_by: str


def latest_verification() -> Verification | None:
    """The newest ``audit.verified`` event read back, or None when the trail was never verified this way."""
    event = AuditEvent.objects.filter(action="audit.verified").order_by("-created_at", "-id").first()
    if event is None:
        return None
    data = event.payload_data
    return Verification(
        at=event.created_at,
        ok=bool(data.get("ok")),
        verified=int(data.get("verified", 0)),
        checkpoints=int(data.get("checkpoints", 0)),
        breaks=list(data.get("breaks", [])),
        problems=list(data.get("problems", [])),
        requested_by=str(data.get("requested_by", "")),
    )


@dataclass(frozen=True, slots=True)
class CheckpointStatus:
    """The newest signed checkpoint: the checkpoint if its signature holds, else why it does not."""

    name: str
    checkpoint: Checkpoint | None
    error: str


def latest_checkpoint() -> CheckpointStatus | None:
    """Read the newest checkpoint file and check its signature; None when there is none."""
    try:
        names = checkpoint_names()
    except (OSError, CheckpointError) as exc:
        return CheckpointStatus(name="", checkpoint=None, error=f"the checkpoint store cannot be read: {exc}")
    if not names:
        return None
    try:
        return CheckpointStatus(name=names[-1], checkpoint=read_checkpoint(names[-1]), error="")
    except CheckpointError as exc:
        return CheckpointStatus(name=names[-1], checkpoint=None, error=exc.message)
    except OSError as exc:
        return CheckpointStatus(name=names[-1], checkpoint=None, error=f"it cannot be read: {exc}")


def _status() -> dict:
    return {
        "verification": latest_verification(),
        "checkpoint": latest_checkpoint(),
        "verifying": cache.get(VERIFY_LOCK) is not None,
    }


def _page(request: HttpRequest, slug: str, fields: tuple[str, ...]) -> HttpResponse:
    def results(filters: ReportFilters, organisation) -> dict:
        events = audit_event_list(**_kwargs(filters, organisation))
        return {"page": Paginator(events, PAGE_SIZE).get_page(request.GET.get("page")), **_status()}

    return _report_page(request, slug, template=TEMPLATE, fields=fields, results=results)


def _rows(filters: ReportFilters, organisation) -> tuple[int, Iterator[tuple]]:
    events = audit_event_list(**_kwargs(filters, organisation))
    found = events.order_by().aggregate(rows=Count("id"), last=Max("id"))
    pinned = audit_event_list(**_kwargs(filters, organisation), up_to_id=found["last"] or 0)

    def rows() -> Iterator[tuple]:
        for event in pinned.iterator(chunk_size=2000):
            yield (
                timezone.localtime(event.created_at, IST).strftime("%Y-%m-%d %H:%M:%S.%f"),
                event.chain,
                event.seq,
                event.actor,
                event.actor_name,
                event.action,
                event.target_type,
                event.target_id,
                event.ip,
                event.request_id,
                event.payload,
                event.hash,
            )

    return found["rows"], rows()


def _export_view(request: HttpRequest, slug: str, fields: tuple[str, ...]) -> HttpResponse:
    return _export(request, slug, template=TEMPLATE, fields=fields, report="audit_log", rows=_rows, header=HEADER)


def _verify(request: HttpRequest, slug: str, page: str) -> HttpResponse:
    """Start a verification of the whole trail, unless one is running; back to the page either way."""
    _, refused = _organisation(request, slug)
    if refused is not None:
        return refused
    if cache.add(VERIFY_LOCK, timezone.now().isoformat(), timeout=VERIFY_LOCK_SECONDS):
        audit_verify.delay(f"user:{request.user.pk}")
        messages.success(request, "The audit trail is being verified; the result shows here when it is done.")
    else:
        messages.info(request, "A verification is already running; its result shows here when it is done.")
    return redirect(page)


@verified_required
@require_GET
def audit_log(request: HttpRequest, slug: str) -> HttpResponse:
    return _page(request, slug, FIELDS)


@verified_required
@require_GET
def audit_log_export(request: HttpRequest, slug: str) -> HttpResponse:
    return _export_view(request, slug, FIELDS)


@verified_required
@require_POST
def audit_verify_start(request: HttpRequest, slug: str) -> HttpResponse:
    return _verify(request, slug, request.path.removesuffix("verify/"))


@verified_required
@require_GET
def platform_audit_log(request: HttpRequest) -> HttpResponse:
    return _page(request, PLATFORM, PLATFORM_FIELDS)


@verified_required
@require_GET
def platform_audit_log_export(request: HttpRequest) -> HttpResponse:
    return _export_view(request, PLATFORM, PLATFORM_FIELDS)


@verified_required
@require_POST
def platform_audit_verify_start(request: HttpRequest) -> HttpResponse:
    return _verify(request, PLATFORM, request.path.removesuffix("verify/"))
