from django.apps import AppConfig


class BrokersConfig(AppConfig):
    name = "brokers"
    verbose_name = "Brokers"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from brokers import selectors
        from brokers.adapters import registry
        from brokers.adapters.paper.adapter import PaperAdapter
        from marketdata.listeners import register_tick_listener

        # The permission ids cached for the access queries are fixed once migrated, but a flush (a
        # test database emptied between tests) recreates the rows under new ids: forget them then.
        post_migrate.connect(
            lambda **kwargs: selectors.forget_permission_ids(), weak=False, dispatch_uid="brokers-permission-ids"
        )
        registry.register("paper", PaperAdapter)
        # The paper exchange matches resting orders on every batch of quotes the feed publishes.
        register_tick_listener(
            "paper-exchange", lambda quotes, passed: registry.get_adapter("paper").on_quotes(quotes, passed=passed)
        )
