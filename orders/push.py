"""Live updates: each order, trade and position change is pushed, after commit, to the sockets of the
user who placed the order and of everyone who may view the account, as the same partial the pages
render (``templates/orders/``), marked ``hx-swap-oob`` so htmx swaps it by its stable id."""

from __future__ import annotations

import logging
import time

from django.db import transaction
from django.template.loader import render_to_string

from accounts.models import Membership, Role
from marketdata.quotes import get_quote
from terminal.push import push_to_user

logger = logging.getLogger(__name__)


_VIEWERS_TTL = 10.0  # seconds a process reuses an account's viewer list (a revoked grant stops within this)
_viewers: dict[int, tuple[float, frozenset[int]]] = {}


def account_viewers(account) -> set[int]:
    """Return the ids of users who may view ``account`` (cached for a few seconds per process)."""
    now = time.monotonic()
    cached = _viewers.get(account.pk)
    if cached is None or now - cached[0] > _VIEWERS_TTL:
        cached = (now, frozenset(_load_viewers(account)))
        _viewers[account.pk] = cached
    return set(cached[1])


def _load_viewers(account) -> set[int]:
    """Its organisation's Owners and Admins, and the Traders and Viewers holding a view grant on it."""
    from guardian.shortcuts import get_users_with_perms

    managers = set(
        Membership.objects.filter(
            organisation_id=account.organisation_id, role__in=[Role.OWNER, Role.ADMIN]
        ).values_list("user_id", flat=True)
    )
    members = set(Membership.objects.filter(organisation_id=account.organisation_id).values_list("user_id", flat=True))
    granted = {
        u.pk
        for u in get_users_with_perms(account, only_with_perms_in=["view_brokeraccount"], with_group_users=False)
        if u.pk in members
    }
    return managers | granted


def render_order_change(order, trade=None) -> str:
    """Return the oob fragments for an order change (and its trade and position, when there is a fill)."""
    from orders.models import Position
    from orders.selectors import order_row

    parts = [render_to_string("orders/order_row.html", {"row": order_row(order), "oob": True})]
    if trade is not None:
        parts.append(render_to_string("orders/trade_row.html", {"trade": trade, "oob": True}))
        position = (
            Position.objects.filter(
                account_id=order.account_id, instrument_id=order.instrument_id, product=order.product
            )
            .select_related("instrument")
            .first()
        )
        if position is not None:
            quote = get_quote(position.instrument_id)
            ltp = quote.ltp if quote else None
            parts.append(
                render_to_string(
                    "orders/position_row.html",
                    {"position": position, "ltp": ltp, "unrealised": position.unrealised_pnl(ltp), "oob": True},
                )
            )
    return "".join(parts)


def push_order_change(order, trade=None) -> None:
    """Render and send now (call after commit); a failure is logged, never raised into the order flow."""
    try:
        html = render_order_change(order, trade)
        recipients = account_viewers(order.account)
        if order.placed_by_id:
            recipients.add(order.placed_by_id)
        for user_id in recipients:
            push_to_user(user_id, html)
    except Exception:
        logger.warning("could not push the change of order %s", order.pk, exc_info=True)


def order_changed_on_commit(order, trade=None) -> None:
    transaction.on_commit(lambda: push_order_change(order, trade))
