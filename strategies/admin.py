"""The Django admin's view of strategies: read-only. Definitions, algo ids and deployments change only
through the services (``strategies.services``), which check the actor's role in the organisation and
audit every change; the admin shows them, their accounts, intents and log."""

from django.contrib import admin

from strategies.models import AlgoId, Deployment, DeploymentAccount, DeploymentEvent, StrategyDefinition


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(StrategyDefinition)
class StrategyDefinitionAdmin(ReadOnlyAdmin):
    list_display = ["name", "kind", "organisation", "created_by", "updated_at"]
    list_filter = ["kind", "organisation"]
    search_fields = ["name"]


@admin.register(AlgoId)
class AlgoIdAdmin(ReadOnlyAdmin):
    list_display = ["code", "organisation", "is_active", "description", "created_by", "created_at"]
    list_filter = ["is_active", "organisation"]
    search_fields = ["code"]


class DeploymentAccountInline(ReadOnlyInline):
    model = DeploymentAccount
    fields = ["account", "multiplier", "status"]


class DeploymentEventInline(ReadOnlyInline):
    model = DeploymentEvent
    fields = ["created_at", "kind", "message"]
    ordering = ["-pk"]

    def get_queryset(self, request):
        return super().get_queryset(request).order_by("-pk")


@admin.register(Deployment)
class DeploymentAdmin(ReadOnlyAdmin):
    list_display = ["name", "organisation", "kind", "mode", "status", "algo_id", "created_by", "started_at"]
    list_filter = ["mode", "status", "organisation"]
    search_fields = ["name"]
    exclude = ["webhook_secret_sha256"]
    inlines = [DeploymentAccountInline, DeploymentEventInline]
