from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from brokers.adapters import updates
        from orders import metrics, push  # noqa: F401  (metrics: exported from start-up)
        from orders.services.broker_updates import apply_broker_updates
        from terminal.lifespan import register_drain

        # Every adapter's order-update stream lands in the one place that applies status changes and fills.
        updates.subscribe("orders", apply_broker_updates)
        # A stopping process (web worker, Celery worker, the feed that fills paper orders) pushes the order
        # changes still queued.
        register_drain("order changes", push.flush)
