from django.apps import AppConfig


class BrokersConfig(AppConfig):
    name = "brokers"
    verbose_name = "Brokers"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from brokers import metrics, selectors  # noqa: F401 - metrics: the scrape-time broker gauges
        from brokers.families.runtime import build_broker_feed
        from infra.sealed_fields import register_sealed_field
        from marketdata.feeds.sources import register_feed_source

        # Rotation (infra.key_rotation) re-seals these under the current key; retiring a key waits for them.
        register_sealed_field(
            "brokers.BrokerAccount",
            "credentials_ciphertext",
            binding=lambda account: account.credentials_binding,
            label="broker credentials",
        )
        register_sealed_field(
            "brokers.BrokerSession",
            "secrets_ciphertext",
            binding=lambda session: session.secrets_binding,
            label="broker sessions",
        )

        register_feed_source(
            "broker",
            build_broker_feed,
            help="the market-data websocket of BROKER_FEED_ACCOUNT_ID's broker family (its live session)",
        )

        # The permission ids cached for the access queries are fixed once migrated, but a flush (a
        # test database emptied between tests) recreates the rows under new ids: forget them then.
        post_migrate.connect(
            lambda **kwargs: selectors.forget_permission_ids(), weak=False, dispatch_uid="brokers-permission-ids"
        )
