"""The reports' front doors: an organisation's list of its reports, the platform's, and ``/compliance/``,
where a reader lands (the one organisation's list, or a choice among theirs and the platform's)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET

from accounts.selectors import report_organisation_list_for_user
from compliance.access import PLATFORM, platform_reports_allowed
from compliance.views import _organisation, verified_required

# (URL name without the platform's prefix, title, what it shows): the order of the lists.
REPORTS = (
    (
        "audit-log",
        "Audit log",
        "Every recorded act, filtered by actor, action, target and day; the chain's verification.",
    ),
    ("trade-trail", "Trade trail", "Every trade with the order it filled."),
    (
        "order-to-trade",
        "Order-to-trade ratio",
        "Orders, modifications and cancellations per trade, per account and day.",
    ),
    (
        "algo-summary",
        "Algo order summary",
        "Per algo id and day: orders, trades, rejections and the orders-per-second peak.",
    ),
    ("rms-rejections", "RMS rejections", "Orders the pre-trade checks refused, by rule."),
    ("kill-switch-events", "Kill-switch events", "Every kill switch engaged or lifted."),
    ("login-history", "Login history", "Sign-ins, failed passwords and codes, lockouts, with addresses."),
)
PLATFORM_REPORTS = REPORTS  # every report has its platform-wide version


@verified_required
@require_GET
def reports_home(request: HttpRequest) -> HttpResponse:
    """Where a reader lands: the reports of their one organisation, or the list of theirs (404: none)."""
    organisations = list(report_organisation_list_for_user(user=request.user))
    platform = platform_reports_allowed(request.user)
    if len(organisations) == 1 and not platform:
        return redirect("compliance:reports", slug=organisations[0].slug)
    if not organisations and not platform:
        _, refused = _organisation(request, PLATFORM)  # the same 404 as the platform's pages give
        return refused
    return render(request, "compliance/home.html", {"organisations": organisations, "platform": platform})


@verified_required
@require_GET
def reports(request: HttpRequest, slug: str) -> HttpResponse:
    organisation, refused = _organisation(request, slug)
    if refused is not None:
        return refused
    return render(request, "compliance/reports.html", {"organisation": organisation, "reports": REPORTS})


@verified_required
@require_GET
def platform_reports(request: HttpRequest) -> HttpResponse:
    _, refused = _organisation(request, PLATFORM)
    if refused is not None:
        return refused
    return render(request, "compliance/reports.html", {"organisation": None, "reports": PLATFORM_REPORTS})
