"""RMS rejections by rule: per IST day, broker account and rule, how many orders the pre-trade checks
refused, from the trail's ``rms.rejected`` events (a refused order is never written as an order; its
event names the rule, the message and the account). Counted in the database: the payload's
``rule`` and ``account_id`` are read as JSON (``jsonb`` on PostgreSQL, SQLite's JSON functions).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime

from django.db.models import CharField, Count, JSONField, Max
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, TruncDate
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from accounts.models import Organisation
from audit.models import AuditEvent
from brokers.models import BrokerAccount
from compliance.reports.scope import scope_of
from compliance.selectors import IST, ist_bounds
from compliance.views import ReportFilters, _export, _report_page, report_views

TITLE = "RMS rejections by rule"  # the title its PDF and XLSX exports carry
TEMPLATE = "compliance/rms_rejections.html"
FIELDS = ("account", "from", "to", "rule")
PLATFORM_FIELDS = ("from", "to", "rule", "org")
HEADER = ("date_ist", "organisation", "client_code", "rule", "rejections", "last_at_ist")


@dataclass(frozen=True, slots=True)
class RejectionRow:
    day: date
    account: BrokerAccount | None  # None when the event names no account still on record
    account_id: int | None
    rule: str
    count: int
    last_at: datetime


def rms_rejection_list(
    *,
    organisation: Organisation | None,
    date_from: date,
    date_to: date,
    account: BrokerAccount | None = None,
    rule: str = "",
) -> list[RejectionRow]:
    """Return one row per IST day, account and rule with any pre-trade rejection in the range, of the
    organisation's accounts (every account when None), newest day first, then by rule and client code."""
    start, end = ist_bounds(date_from, date_to)
    events = (
        AuditEvent.objects.filter(action="rms.rejected", created_at__gte=start, created_at__lt=end)
        .annotate(data=Cast("payload", JSONField()))
        # Cast to text: a lookup on the JSON key itself would compare JSON values (SQLite reads the
        # right-hand side as JSON), and these compare as plain text.
        .annotate(
            account_key=Cast(KT("data__account_id"), CharField()),
            rule=Cast(KT("data__rule"), CharField()),
            day=TruncDate("created_at", tzinfo=IST),
        )
    )
    if account is not None:
        events = events.filter(account_key=str(account.pk))
    elif organisation is not None:
        ids = [str(pk) for pk in BrokerAccount.objects.filter(organisation=organisation).values_list("pk", flat=True)]
        events = events.filter(account_key__in=ids)
    if rule:
        events = events.filter(rule=rule)
    grouped = events.values("day", "account_key", "rule").annotate(n=Count("id"), last=Max("created_at"))
    found = list(grouped.order_by())
    account_ids = {int(row["account_key"]) for row in found if str(row["account_key"] or "").isdigit()}
    accounts = BrokerAccount.objects.select_related("organisation").in_bulk(account_ids)
    rows = []
    for row in found:
        key = str(row["account_key"] or "")
        account_id = int(key) if key.isdigit() else None
        day = row["day"] if isinstance(row["day"], date) else date.fromisoformat(str(row["day"]))
        rows.append(
            RejectionRow(day, accounts.get(account_id), account_id, str(row["rule"] or ""), row["n"], row["last"])
        )
    rows.sort(key=lambda r: (r.rule, r.account.client_code if r.account else "", r.account_id or 0))
    rows.sort(key=lambda r: r.day, reverse=True)
    return rows


def _kwargs(filters: ReportFilters, organisation) -> dict:
    return {
        "organisation": scope_of(organisation, filters.extra),
        "date_from": filters.date_from,
        "date_to": filters.date_to,
        "account": filters.account,
        "rule": filters.extra.get("rule", ""),
    }


def _page(request: HttpRequest, slug: str, fields: tuple[str, ...]) -> HttpResponse:
    def results(filters: ReportFilters, organisation) -> dict:
        rows = rms_rejection_list(**_kwargs(filters, organisation))
        by_rule: Counter[str] = Counter()
        for row in rows:
            by_rule[row.rule] += row.count
        return {"rows": rows, "by_rule": sorted(by_rule.items(), key=lambda item: (-item[1], item[0]))}

    return _report_page(request, slug, template=TEMPLATE, fields=fields, results=results)


def _rows(filters: ReportFilters, organisation) -> tuple[int, list[tuple]]:
    rows = [
        (
            row.day.isoformat(),
            row.account.organisation.slug if row.account else "",
            row.account.client_code if row.account else "",
            row.rule,
            row.count,
            timezone.localtime(row.last_at, IST).strftime("%Y-%m-%d %H:%M:%S"),
        )
        for row in rms_rejection_list(**_kwargs(filters, organisation))
    ]
    return len(rows), rows


def _export_view(request: HttpRequest, slug: str, fields: tuple[str, ...]) -> HttpResponse:
    return _export(
        request, slug, template=TEMPLATE, fields=fields, report="rms_rejections", rows=_rows, header=HEADER, title=TITLE
    )


rms_rejections, rms_rejections_export, platform_rms_rejections, platform_rms_rejections_export = report_views(
    _page, _export_view, FIELDS, PLATFORM_FIELDS
)
