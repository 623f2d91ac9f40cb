from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from brokers.adapters import updates
        from orders import metrics  # noqa: F401  (exported from start-up)
        from orders.services.broker_updates import apply_broker_updates

        # Every adapter's order-update stream lands in the one place that applies status changes and fills.
        updates.subscribe("orders", apply_broker_updates)
