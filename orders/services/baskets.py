"""A basket: several orders placed at once. Every leg is checked before any is placed
(``check_basket``); then the legs are placed in order, independent of each other as at the exchange,
each as a sliced order. With an idempotency key the basket is idempotent as a whole (``Basket``
keeps each leg's outcome)."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.canonical_json import canonical_dumps
from core.errors import ApplicationError
from orders.errors import OrderInvalid, OrderStateConflict
from orders.locks import today_ist
from orders.models import Basket, Order
from orders.services.requests import (
    OrderRequest,
    arithmetic_refused,
    check_choices,
    check_numbers,
    instrument_of,
    order_intent,
    reject_input,
)
from orders.services.slices import place_sliced_order
from rms.errors import RiskRejected
from rms.services import validate_order_input

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BasketResult:
    """One leg's outcome: the orders it placed, or the error that stopped it ({"code", "message", "extra"})."""

    orders: list[Order]
    error: dict | None


BASKET_ABANDONED_SECONDS = 120  # a basket still being placed after this long died with its process


def _leg_error(error: ApplicationError) -> dict:
    return {"code": error.code, "message": error.message, "extra": error.extra}


def check_basket(*, actor, account, requests: list[OrderRequest], ip: str | None = None) -> None:
    """Check every leg against everything that can be known before placing (its choices and numbers,
    its instrument, the instrument's own rules) and place nothing. Raises OrderInvalid
    ``basket_invalid`` naming each refused leg in ``extra["legs"]``; each refusal is audited as a
    single order's would be."""
    today = today_ist()
    refused = []
    for leg, request in enumerate(requests):
        try:
            check_choices(request)
            check_numbers(request)
            instrument = instrument_of(request)
            with arithmetic_refused():
                validate_order_input(
                    order_intent(account=account, actor=actor, instrument=instrument, request=request), today
                )
        except (OrderInvalid, RiskRejected) as error:
            reject_input(actor=actor, account=account, request=request, error=error, ip=ip)
            refused.append({"leg": leg, **_leg_error(error)})
    if refused:
        raise OrderInvalid(
            f"{len(refused)} of the basket's {len(requests)} legs cannot be placed; none was placed.",
            code="basket_invalid",
            extra={"legs": refused},
        )


def _basket_fingerprint(requests: list[OrderRequest]) -> str:
    legs = [{k: str(v) if isinstance(v, Decimal) else v for k, v in asdict(r).items()} for r in requests]
    return hashlib.sha256(canonical_dumps(legs).encode()).hexdigest()


def _stored_outcome(outcome: list[dict]) -> list[BasketResult]:
    ids = [pk for leg in outcome for pk in leg["orders"]]
    orders = Order.objects.in_bulk(ids)
    return [BasketResult([orders[pk] for pk in leg["orders"]], leg["error"]) for leg in outcome]


def _claim_basket(*, account, idempotency_key: str, fingerprint: str) -> tuple[Basket, list[BasketResult] | None]:
    """Return the basket row for this key and, when it was placed before, its outcome. Raises OrderInvalid
    when the key was used for other legs and OrderStateConflict while another request places it."""
    for _ in range(2):
        basket = Basket.objects.filter(account=account, idempotency_key=idempotency_key).first()
        if basket is None:
            try:
                with transaction.atomic():
                    return Basket.objects.create(
                        account=account, idempotency_key=idempotency_key, fingerprint=fingerprint
                    ), None
            except IntegrityError:
                continue  # another request claimed the key first: read what it claimed
        if basket.fingerprint != fingerprint:
            raise OrderInvalid(
                "This Idempotency-Key was used for a different basket.",
                code="idempotency_key_reused",
                extra={"idempotency_key": idempotency_key},
            )
        if basket.outcome is not None:
            return basket, _stored_outcome(basket.outcome)
        if (timezone.now() - basket.created_at).total_seconds() < BASKET_ABANDONED_SECONDS:
            raise OrderStateConflict(
                "This basket is being placed by another request; ask again in a moment.",
                code="basket_in_progress",
                extra={"idempotency_key": idempotency_key},
            )
        return basket, None  # abandoned mid-way: its legs' own keys return what was placed
    raise OrderStateConflict("This basket is being placed by another request.", code="basket_in_progress")


def place_basket(
    *,
    actor,
    account,
    requests: list[OrderRequest],
    source: str,
    idempotency_key: str | None = None,
    ip: str | None = None,
) -> list[BasketResult]:
    """Place several orders at once; return one result per leg (its orders, or the error that stopped it).

    Every leg is checked first (``check_basket``): if any cannot be placed, none is, and OrderInvalid
    ``basket_invalid`` names them. Then the legs are placed in order and are independent, as at the
    exchange: one leg's rejection (a risk rule, the rate limit, the broker) does not undo the others,
    and once a leg is placed no later error escapes as an exception, so the caller always learns
    which legs are live. With an ``idempotency_key`` the basket is idempotent as a whole: a repeat
    returns the first outcome, refused legs included, and places nothing.
    """
    basket = None
    if idempotency_key:
        basket, outcome = _claim_basket(
            account=account, idempotency_key=idempotency_key, fingerprint=_basket_fingerprint(requests)
        )
        if outcome is not None:
            return outcome
    try:
        check_basket(actor=actor, account=account, requests=requests, ip=ip)
    except OrderInvalid:
        if basket is not None:
            basket.delete()  # nothing was placed: the same key may be used again, corrected
        raise
    results = []
    for leg, request in enumerate(requests):
        key = f"{idempotency_key}:leg{leg}" if idempotency_key else None
        try:
            orders = place_sliced_order(
                actor=actor, account=account, request=request, source=source, idempotency_key=key, ip=ip
            )
            results.append(BasketResult(orders, None))
        except ApplicationError as error:
            results.append(BasketResult([], _leg_error(error)))
        except Exception:
            # A fault, not a refusal: the other legs may be live, so the caller must still get them.
            logger.exception("basket leg %s failed", leg)
            failed = ApplicationError("This leg failed on the server; it was not placed.", code="leg_failed")
            results.append(BasketResult([], _leg_error(failed)))
    if basket is not None:
        basket.outcome = [{"orders": [o.pk for o in r.orders], "error": r.error} for r in results]
        basket.save(update_fields=["outcome"])
    return results
