from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit trail, read-only for everyone (superusers too): the admin can only look.

    Nothing here could change a row anyway (the database rejects it), but refusing add, change and
    delete up front gives a clear 403 instead of a database error, and hides the buttons.
    """

    list_display = ("created_at", "chain", "seq", "actor", "actor_name", "action", "target_type", "target_id", "ip")
    list_filter = ("action", "actor", ("created_at", admin.DateFieldListFilter))
    search_fields = ("=actor", "actor_name", "=action", "=target_id", "=request_id")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    show_full_result_count = False  # COUNT(*) over millions of rows on every page is not worth it
    list_per_page = 100
    readonly_fields = [field.name for field in AuditEvent._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False
