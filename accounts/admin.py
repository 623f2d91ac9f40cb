from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django_otp.plugins.otp_static import admin as otp_static_admin  # registers StaticDeviceAdmin, replaced below
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken

from accounts.models import ApiKey, Membership, Organisation, User

admin.site.register(User, UserAdmin)


class BackupCodeInline(admin.TabularInline):
    """A device's backup codes as stored: digests, which may be deleted but not added or edited.

    A code typed here would be stored as typed, in plain text, and chosen by a person rather than
    at random; users make their own codes on their profile page (accounts.otp.backup_codes_issue).
    """

    model = StaticToken
    extra = 0
    fields = readonly_fields = ["digest"]
    verbose_name = "backup code"

    @admin.display(description="Stored digest (the code itself is not kept)")
    def digest(self, obj):
        return obj.token

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class StaticDeviceAdmin(otp_static_admin.StaticDeviceAdmin):
    inlines = [BackupCodeInline]


admin.site.unregister(StaticDevice)
admin.site.register(StaticDevice, StaticDeviceAdmin)


@admin.register(Organisation)
class OrganisationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    # Read-only here: role changes go through accounts.services so the Owner rules and the audit apply.
    list_display = ["user", "organisation", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "organisation__slug"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "prefix", "scope", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["scope"]
    search_fields = ["name", "user__username", "prefix"]
    exclude = ["secret_hash"]

    def has_add_permission(self, request):
        return False  # keys are created by their owner, who alone sees the secret

    def has_change_permission(self, request, obj=None):
        return False
