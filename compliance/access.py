"""Who reads the compliance reports.

An organisation's reports: its Owner, Admins and Compliance members
(``accounts.selectors.organisation_get_for_reports``). The platform's reports, every organisation at
once: platform staff who hold ``compliance.view_reports`` (the ``Compliance officer`` group, or a
superuser). Staff alone is the admin's door, not a reading of every firm's trades.
"""

from __future__ import annotations

# The organisation "slug" the platform's report routes pass to the shared page and export helpers;
# a real slug is never empty.
PLATFORM = ""
VIEW_REPORTS = "compliance.view_reports"


def platform_reports_allowed(user) -> bool:
    """Whether ``user`` reads the platform-wide reports: active staff with ``compliance.view_reports``."""
    return bool(user.is_authenticated and user.is_active and user.is_staff and user.has_perm(VIEW_REPORTS))
