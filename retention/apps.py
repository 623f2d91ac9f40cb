from django.apps import AppConfig


class RetentionConfig(AppConfig):
    name = "retention"
    verbose_name = "Retention and archives"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from retention import checks  # noqa: F401 - registers the system checks
        from retention.policy import sync_policy_after_migrate

        # migrate runs as the owner role, the only one that may write the policy row (deploy/postgres/).
        post_migrate.connect(sync_policy_after_migrate, sender=self, dispatch_uid="retention-sync-policy")
