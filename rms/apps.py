from django.apps import AppConfig


class RmsConfig(AppConfig):
    name = "rms"
    verbose_name = "Risk management (RMS)"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from rms.limits import invalidate
        from rms.models import RiskLimit

        def _changed(**_: object) -> None:
            invalidate()

        post_save.connect(_changed, sender=RiskLimit, dispatch_uid="rms-limits-saved", weak=False)
        post_delete.connect(_changed, sender=RiskLimit, dispatch_uid="rms-limits-deleted", weak=False)
