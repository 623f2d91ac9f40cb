from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django_otp.plugins.otp_static import admin as otp_static_admin  # registers StaticDeviceAdmin, replaced below
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp import admin as otp_totp_admin  # registers TOTPDeviceAdmin, replaced below
from django_otp.plugins.otp_totp.models import TOTPDevice

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


class TOTPDeviceAdmin(admin.ModelAdmin):
    """TOTP devices without their seed: no key field, QR code or configuration page, and no adding.

    django-otp's admin shows the key and a QR code of the seed unless OTP_ADMIN_HIDE_SENSITIVE_DATA;
    the seed is stored sealed (accounts.models.SealedTOTPDevice) and only its user ever sees it, at
    enrolment. An admin may rename, unconfirm or remove a device (a lost phone: the user enrols again
    at next sign-in). The owner is fixed: moving a device would hand its seed to someone else.
    """

    list_display = otp_totp_admin.TOTPDeviceAdmin.list_display
    list_filter = otp_totp_admin.TOTPDeviceAdmin.list_filter
    search_fields = otp_totp_admin.TOTPDeviceAdmin.search_fields
    list_select_related = ["user"]
    fields = [
        "user",
        "name",
        "confirmed",
        "created_at",
        "last_used_at",
        "step",
        "digits",
        "tolerance",
        "drift",
        "throttling_failure_count",
        "throttling_failure_timestamp",
    ]
    readonly_fields = [f for f in fields if f not in ("name", "confirmed")]

    def has_add_permission(self, request):
        return False  # a seed typed here would be chosen by a person and seen by the admin


admin.site.unregister(TOTPDevice)
admin.site.register(TOTPDevice, TOTPDeviceAdmin)


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
