from django.apps import AppConfig


class RmsConfig(AppConfig):
    name = "rms"
    verbose_name = "Risk management (RMS)"

    def ready(self) -> None:
        from django.db import transaction
        from django.db.models.signals import post_delete, post_save

        from audit.history import track_history
        from rms.limits import invalidate
        from rms.models import KillSwitch, RiskLimit

        # Field-level history of limits and switches for admins (the audit trail records the acts).
        track_history(RiskLimit, exclude_fields=["updated_at"])
        track_history(KillSwitch)

        def _changed(**_: object) -> None:
            # At once, so this process's next check (even inside the saving transaction) sees the change;
            # and again after commit, since a process that reloaded in between read the old rows.
            invalidate()
            transaction.on_commit(invalidate)

        post_save.connect(_changed, sender=RiskLimit, dispatch_uid="rms-limits-saved", weak=False)
        post_delete.connect(_changed, sender=RiskLimit, dispatch_uid="rms-limits-deleted", weak=False)
