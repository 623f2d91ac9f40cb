from django.apps import AppConfig


class BrokersConfig(AppConfig):
    name = "brokers"
    verbose_name = "Brokers"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from brokers import metrics, selectors  # noqa: F401 - metrics: the scrape-time broker gauges

        # The permission ids cached for the access queries are fixed once migrated, but a flush (a
        # test database emptied between tests) recreates the rows under new ids: forget them then.
        post_migrate.connect(
            lambda **kwargs: selectors.forget_permission_ids(), weak=False, dispatch_uid="brokers-permission-ids"
        )
