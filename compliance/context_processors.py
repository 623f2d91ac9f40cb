"""What every page's top bar needs from the reports: whether the user reads any (a lazy check, one query
on first use; an HTMX fragment that does not show the bar costs nothing)."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts.selectors import report_organisation_list_for_user
from compliance.access import platform_reports_allowed


def report_access(request: HttpRequest) -> dict[str, object]:
    """``reads_reports``: True when the request's user reads some organisation's or the platform's reports."""

    def reads() -> bool:
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return False
        return platform_reports_allowed(user) or report_organisation_list_for_user(user=user).exists()

    return {"reads_reports": SimpleLazyObject(reads)}
