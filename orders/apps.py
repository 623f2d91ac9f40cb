from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "Orders"

    def ready(self) -> None:
        from brokers.adapters import updates
        from infra import lifespan
        from infra import push as user_push
        from orders import (
            metrics,  # noqa: F401  (exported from start-up)
            push,
        )
        from orders.selectors import daily_losses
        from orders.services import apply_broker_updates
        from rms.selectors import register_daily_losses

        # Every adapter's order-update stream lands in the one place that applies status changes and fills.
        updates.subscribe("orders", apply_broker_updates)
        # A stopping process (web worker, Celery worker, feed) pushes the order changes it still holds.
        lifespan.register_drain("orders.push", push.drain)
        # A socket that missed order changes (a killed worker's queue, a reconnect) gets their current state.
        user_push.register_replay("order", push.replay_order_fragments)
        # RMS's MTM monitor weighs the accounts' losses today, which only the OMS can compute.
        register_daily_losses(daily_losses)
