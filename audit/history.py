"""Field-level change history (django-auditlog) for the models that carry permissions and limits.

This complements the hash-chained AuditEvent trail: auditlog records *what changed in a row*
(old and new value per field) for admins to browse in the Django admin ("Audit log" > "Log
entries", or a model admin's history page with ``AuditlogHistoryAdminMixin``). It is signal-based,
so ``QuerySet.update()``, ``bulk_create`` and raw SQL bypass it; changes that matter for compliance
must also go through a service that calls ``audit_record``.

A domain app registers its model from its ``AppConfig.ready()``::

    from audit.history import track_history
    track_history(self.get_model("BrokerAccount"), exclude_fields=["updated_at"], mask_fields=["api_secret"])
"""

from __future__ import annotations

from collections.abc import Iterable

from auditlog.registry import auditlog
from django.db import models

_tracked: set[str] = set()


def track_history(
    model: type[models.Model], *, exclude_fields: Iterable[str] = (), mask_fields: Iterable[str] = ()
) -> None:
    """Record field-level changes of ``model`` with django-auditlog; calling it again is harmless.

    ``exclude_fields`` are not recorded at all (noise such as timestamps); ``mask_fields`` are recorded
    as changed but with their values masked (secrets, password hashes).
    """
    if model._meta.label in _tracked:
        return
    auditlog.register(model, exclude_fields=list(exclude_fields), mask_fields=list(mask_fields))
    _tracked.add(model._meta.label)


def tracked_models() -> list[str]:
    """Return the labels of the models whose history is recorded, sorted."""
    return sorted(_tracked)
