"""Saved baskets: a user's named sets of order legs for one account. Every function checks that the
basket belongs to ``user`` and ``account``; legs are checked as placing would check them before any is
saved (``orders.preview.check_legs``), so a basket is saved whole or not at all."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from orders.preview import check_legs
from orders.services import OrderRequest
from terminal.errors import BasketError
from terminal.models import MAX_BASKETS_PER_ACCOUNT, SavedBasket, SavedBasketLeg

MAX_NAME = 40


def basket_get(*, user, account, basket_id: int) -> SavedBasket:
    """Return the user's basket on ``account``; raise BasketError ``basket_not_found`` (404) otherwise."""
    basket = SavedBasket.objects.filter(user=user, account=account, pk=basket_id).first()
    if basket is None:
        raise BasketError(f"Basket {basket_id} was not found.", code="basket_not_found")
    return basket


def _name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME:
        raise BasketError(
            f"A basket's name needs 1 to {MAX_NAME} characters.", code="basket_name_invalid", extra={"field": "name"}
        )
    return name


def basket_save(*, user, account, name: str, legs: list[OrderRequest], basket_id: int | None = None) -> SavedBasket:
    """Create the basket (``basket_id`` None) or replace an existing one's name and legs; return it.

    Raises BasketError for a bad name, a name taken on the account, the per-account limit or another
    user's basket, and OrderInvalid ``basket_invalid`` naming each invalid leg; nothing is written then."""
    name = _name(name)
    check_legs(account=account, actor=user, requests=legs)
    with transaction.atomic():
        if basket_id is None:
            count = SavedBasket.objects.select_for_update().filter(user=user, account=account).count()
            if count >= MAX_BASKETS_PER_ACCOUNT:
                raise BasketError(
                    f"You can keep at most {MAX_BASKETS_PER_ACCOUNT} baskets per account.", code="basket_limit"
                )
            basket = SavedBasket(user=user, account=account, name=name)
        else:
            basket = SavedBasket.objects.select_for_update().filter(user=user, account=account, pk=basket_id).first()
            if basket is None:
                raise BasketError(f"Basket {basket_id} was not found.", code="basket_not_found")
            basket.name = name
        try:
            with transaction.atomic():
                basket.save()
        except IntegrityError:
            raise BasketError(
                f"You already have a basket named {name!r} on this account.",
                code="basket_name_taken",
                extra={"field": "name"},
            ) from None
        basket.legs.all().delete()
        SavedBasketLeg.objects.bulk_create(
            SavedBasketLeg(
                basket=basket,
                position=position,
                instrument_id=leg.instrument_id,
                side=leg.side,
                quantity=leg.quantity,
                order_type=leg.order_type,
                product=leg.product,
                price=leg.price,
                trigger_price=leg.trigger_price,
            )
            for position, leg in enumerate(legs)
        )
    return basket


def basket_delete(*, user, account, basket_id: int) -> None:
    """Delete the user's basket; raise BasketError ``basket_not_found`` for any other."""
    deleted, _ = SavedBasket.objects.filter(user=user, account=account, pk=basket_id).delete()
    if not deleted:
        raise BasketError(f"Basket {basket_id} was not found.", code="basket_not_found")


def basket_requests(basket: SavedBasket) -> list[OrderRequest]:
    """The basket's legs as order requests, in order."""
    return [
        OrderRequest(
            instrument_id=leg.instrument_id,
            side=leg.side,
            quantity=leg.quantity,
            order_type=leg.order_type,
            product=leg.product,
            price=leg.price,
            trigger_price=leg.trigger_price,
        )
        for leg in basket.legs.all()
    ]
