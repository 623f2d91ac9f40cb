from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    # The label the audit trail had inside compliance/: its tables, migration history, content types
    # and the compliance.view_reports permission keep their names.
    label = "compliance"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model

        from audit import (
            checks,  # noqa: F401 - registers the system checks and the metrics
            metrics,  # noqa: F401 - registers the system checks and the metrics
        )
        from audit.history import track_history
        from infra.key_rotation import register_key_event

        # The user model is the project's (AUTH_USER_MODEL), so registering it here keeps compliance
        # free of imports from domain apps. Other audited models register from their own apps.
        track_history(get_user_model(), exclude_fields=["last_login"], mask_fields=["password"])

        # Key rotations and retirements (infra.key_rotation, beneath the audit trail) are recorded here.
        register_key_event(_audit_key_event)


def _audit_key_event(action: str, payload) -> None:
    from audit.services import audit_record

    audit_record(actor="system:keys", action=action, payload=dict(payload))
