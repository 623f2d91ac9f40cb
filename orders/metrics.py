"""Prometheus metrics of the order management system (imported in OrdersConfig.ready)."""

from prometheus_client import Counter, Histogram

orders_placed_total = Counter(
    "terminal_orders_placed_total", "Orders that passed the pre-trade check and were recorded.", ["source"]
)
orders_rejected_total = Counter("terminal_orders_rejected_total", "Orders refused before recording, by rule.", ["rule"])
order_status_total = Counter("terminal_order_status_total", "Order status changes from broker outcomes.", ["status"])
overfill_prevented_total = Counter(
    "terminal_order_overfill_prevented_total", "Fills refused because they would overfill an order."
)
order_place_seconds = Histogram(
    "terminal_order_place_seconds",
    "Time to place one order, broker call included.",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
