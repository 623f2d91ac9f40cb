from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from retention.errors import RetentionError
from retention.models import LegalHold, RetentionPolicy
from retention.services.holds import legal_hold_reason, legal_hold_set


class LegalHoldForm(forms.ModelForm):
    class Meta:
        model = LegalHold
        fields = ["organisation", "active", "reason"]

    def clean_reason(self) -> str:
        try:
            return legal_hold_reason(self.cleaned_data["reason"])
        except RetentionError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from exc


@admin.register(LegalHold)
class LegalHoldAdmin(admin.ModelAdmin):
    """Legal holds, for platform staff only; every change goes through the audited service. A hold is
    lifted, never deleted, so the record of it stays."""

    list_display = ["organisation", "active", "reason", "changed_by", "changed_at"]
    list_filter = ["active"]
    form = LegalHoldForm

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return ["organisation"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: LegalHold, form: Any, change: bool) -> None:
        # The form checked the reason and the permissions the staff; the service writes and audits.
        saved = legal_hold_set(
            actor=request.user,  # type: ignore[arg-type]  # the admin's user is ours (AUTH_USER_MODEL)
            organisation=obj.organisation,
            active=obj.active,
            reason=obj.reason,
        )
        obj.pk = saved.pk


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    """The window the database enforces, to look at: it follows RETENTION_YEARS (manage.py retention_policy)."""

    list_display = ["years", "updated_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
