from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model

        from compliance import checks, metrics  # noqa: F401 - registers the system checks and the metrics
        from compliance.history import track_history

        # The user model is the project's (AUTH_USER_MODEL), so registering it here keeps compliance
        # free of imports from domain apps. Other audited models register from their own apps.
        track_history(get_user_model(), exclude_fields=["last_login"], mask_fields=["password"])
