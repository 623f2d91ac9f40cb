from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from brokers.adapters import updates
        from infra import lifespan
        from orders import (
            metrics,  # noqa: F401  (exported from start-up)
            push,
        )
        from orders.services import apply_broker_updates

        # Every adapter's order-update stream lands in the one place that applies status changes and fills.
        updates.subscribe("orders", apply_broker_updates)
        # A stopping process (web worker, Celery worker, feed) pushes the order changes it still holds.
        lifespan.register_drain("orders.push", push.drain)
