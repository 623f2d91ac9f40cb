"""The order's own log: one ``OrderEvent`` row per thing that happened to it."""

from __future__ import annotations

from orders.models import Order, OrderEvent


def new_event(order: Order, kind: str, *, before: str = "", message: str = "", **data) -> OrderEvent:
    """Return an unsaved OrderEvent for the order's current status."""
    return OrderEvent(
        order=order,
        kind=kind,
        from_status=before,
        to_status=order.status,
        message=message[:300],
        data={k: str(v) for k, v in data.items()},
    )


def record_event(order: Order, kind: str, *, before: str = "", message: str = "", **data) -> None:
    """Save an OrderEvent for the order's current status."""
    new_event(order, kind, before=before, message=message, **data).save()
