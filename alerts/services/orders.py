"""The alert trigger order: placed through the order services with source "alert", behind the same
pre-trade checks as every order, once per firing (its idempotency key); the result is recorded on
the firing and pushed to the owner's pages."""

from __future__ import annotations

import logging

from alerts.models import AlertFiring, OrderResult
from alerts.services.outbox import push_firing
from core.errors import ApplicationError
from orders.models import OrderType, Source, Status, Validity
from orders.services import OrderRequest, place_order

logger = logging.getLogger(__name__)


def alert_order_place(*, firing_id: int) -> str:
    """Place the firing's order if it has not been; return the firing's order result.

    Never raises for a refusal (the reason is recorded as ``rejected``); broker errors that leave the
    order unknown are the order system's to reconcile, as for any order.
    """
    firing = AlertFiring.objects.select_related("alert", "alert__instrument", "alert__account", "alert__user").get(
        pk=firing_id
    )
    if firing.order_result != OrderResult.PENDING:
        return firing.order_result
    alert = firing.alert
    instrument = alert.instrument
    if alert.account is None or not alert.order_lots:
        return _record(firing, OrderResult.REJECTED, None, "the alert has no order to place")
    request = OrderRequest(
        instrument_id=instrument.pk,
        side=alert.order_side,
        quantity=alert.order_lots * instrument.lot_size,
        order_type=alert.order_type or OrderType.MARKET,
        product=alert.order_product,
        validity=Validity.DAY,
        price=alert.order_price if alert.order_type == OrderType.LIMIT else None,
        tag=f"alert{alert.pk}"[:20],
    )
    try:
        order = place_order(
            actor=alert.user,
            account=alert.account,
            request=request,
            source=Source.ALERT,
            idempotency_key=f"alert-firing-{firing.pk}",
        )
    except ApplicationError as error:
        return _record(firing, OrderResult.REJECTED, None, f"{error.code}: {error.message}")
    if order.status == Status.REJECTED:
        return _record(firing, OrderResult.REJECTED, order, f"rejected by the broker: {order.message or ''}")
    words = f"{order.side} {order.quantity} {instrument.tradingsymbol} ({order.get_status_display()})"
    return _record(firing, OrderResult.PLACED, order, words)


def _record(firing: AlertFiring, result: str, order, message: str) -> str:
    AlertFiring.objects.filter(pk=firing.pk, order_result=OrderResult.PENDING).update(
        order_result=result, order=order, order_message=message[:300]
    )
    firing.refresh_from_db()
    try:
        push_firing(firing, toast=False)
    except Exception:  # the page shows it at its next refresh
        logger.warning("could not push the order result of firing %s", firing.pk, exc_info=True)
    return firing.order_result
