"""REST API v1 for orders (mounted at /api/v1/ in config/api.py); OpenAPI at /api/docs.

Every route reaches the account through brokers.selectors.account_get_for_user ("trade" for writes,
"view" for reads) and renders domain errors as {"code", "message", "extra"} with a 4xx status.
A repeated ``Idempotency-Key`` header on a write returns the first order instead of placing another.
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Header, Router, Status

from accounts.auth import SCOPE_TRADE, require_scope
from brokers.errors import BrokerAccountNotFound
from brokers.selectors import account_get_for_user
from core.api_errors import errors
from core.client_ip import client_ip
from orders import selectors, services
from orders.errors import OrderNotFound
from orders.models import Order, Source
from orders.reports.holdings import holdings_get
from orders.schemas import (
    MAX_ID,
    BasketIn,
    BasketLegOut,
    ClosePositionIn,
    FundsOut,
    HoldingOut,
    KillSwitchIn,
    ModifyIn,
    OrderIn,
    OrderOut,
    PositionOut,
    TradeOut,
)
from rms.services import kill_switch_release

# A key names one request of a client; the per-leg and per-slice keys derived from it stay within
# the stored column (orders.Order.idempotency_key, 100 characters).
IDEMPOTENCY_KEY_MAX = 64

router = Router(tags=["orders"])

# What a client can do next with a placed order (OpenAPI links: generated clients and fuzzers follow them).
_PLACED_ORDER_LINKS = {
    "GetOrder": {"operationId": "orders_api_order_status", "parameters": {"order_id": "$response.body#/id"}},
    "ModifyOrder": {"operationId": "orders_api_modify", "parameters": {"order_id": "$response.body#/id"}},
    "CancelOrder": {"operationId": "orders_api_cancel", "parameters": {"order_id": "$response.body#/id"}},
}


def _ip(request: HttpRequest) -> str | None:
    return client_ip(request)  # behind the proxy: from X-Forwarded-For, as the lockout sees it


def _request(body: OrderIn) -> services.OrderRequest:
    return services.OrderRequest(
        instrument_id=body.instrument_id,
        side=body.side.upper(),
        quantity=body.quantity,
        order_type=body.order_type.upper(),
        product=body.product.upper(),
        validity=body.validity.upper(),
        price=body.price,
        trigger_price=body.trigger_price,
        tag=body.tag,
        strategy=body.strategy,
        algo_id=body.algo_id,
        variety=body.variety.lower(),
        iceberg_legs=body.iceberg_legs,
        iceberg_quantity=body.iceberg_quantity,
    )


def _account(request: HttpRequest, account_id: int, access: str):
    """The account of a path's ``account_id``; an id no row can have is not found, never a query."""
    if not 0 < account_id <= MAX_ID:
        raise BrokerAccountNotFound(f"Broker account {account_id} was not found.")
    return account_get_for_user(user=request.user, account_id=account_id, access=access)


def _order_for(request: HttpRequest, order_id: int, access: str) -> Order:
    if not 0 < order_id <= MAX_ID:
        raise OrderNotFound(f"Order {order_id} was not found.", extra={"order_id": order_id})
    order = Order.objects.select_related("account", "instrument").filter(pk=order_id).first()
    if order is None:
        raise OrderNotFound(f"Order {order_id} was not found.", extra={"order_id": order_id})
    try:
        account_get_for_user(user=request.user, account_id=order.account_id, access=access)
    except BrokerAccountNotFound:
        raise OrderNotFound(f"Order {order_id} was not found.", extra={"order_id": order_id}) from None
    return order


@router.post(
    "/orders",
    response={201: OrderOut, **errors(404, 429, 503)},
    summary="Place an order",
    openapi_extra={"responses": {201: {"links": _PLACED_ORDER_LINKS}}},
)
def place(
    request: HttpRequest,
    body: OrderIn,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=IDEMPOTENCY_KEY_MAX),
):
    require_scope(request, SCOPE_TRADE)  # an API key with scope read may not act
    account = account_get_for_user(user=request.user, account_id=body.account_id, access="trade")
    order = services.place_order(
        actor=request.user,
        account=account,
        request=_request(body),
        source=Source.API,
        idempotency_key=idempotency_key,
        ip=_ip(request),
    )
    return Status(201, order)


@router.post(
    "/orders/sliced",
    response={201: list[OrderOut], **errors(404, 429, 503)},
    summary="Place an order above the freeze quantity as slices",
)
def place_sliced(
    request: HttpRequest,
    body: OrderIn,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=IDEMPOTENCY_KEY_MAX),
):
    require_scope(request, SCOPE_TRADE)  # an API key with scope read may not act
    account = account_get_for_user(user=request.user, account_id=body.account_id, access="trade")
    orders = services.place_sliced_order(
        actor=request.user,
        account=account,
        request=_request(body),
        source=Source.API,
        idempotency_key=idempotency_key,
        ip=_ip(request),
    )
    return Status(201, orders)


@router.post(
    "/orders/basket", response={201: list[BasketLegOut], **errors(404, 409)}, summary="Place several orders at once"
)
def basket(
    request: HttpRequest,
    body: BasketIn,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=IDEMPOTENCY_KEY_MAX),
):
    require_scope(request, SCOPE_TRADE)  # an API key with scope read may not act
    account_ids = {leg.account_id for leg in body.orders}
    accounts = {i: account_get_for_user(user=request.user, account_id=i, access="trade") for i in sorted(account_ids)}
    if len(accounts) != 1:
        from orders.errors import OrderInvalid

        raise OrderInvalid("All legs of a basket must use one account.", code="basket_accounts_differ")
    account = next(iter(accounts.values()))
    results = services.place_basket(
        actor=request.user,
        account=account,
        requests=[_request(leg) for leg in body.orders],
        source=Source.API,
        idempotency_key=idempotency_key,
        ip=_ip(request),
    )
    return Status(201, [{"leg": i, "orders": r.orders, "error": r.error} for i, r in enumerate(results)])


@router.get("/orders/{order_id}", response=OrderOut, summary="Order status")
def order_status(request: HttpRequest, order_id: int):
    return _order_for(request, order_id, "view")


@router.put("/orders/{order_id}", response={200: OrderOut, **errors(409, 429, 503)}, summary="Modify an order")
def modify(request: HttpRequest, order_id: int, body: ModifyIn):
    require_scope(request, SCOPE_TRADE)  # an API key with scope read may not act
    order = _order_for(request, order_id, "trade")
    return services.modify_order(
        actor=request.user,
        order=order,
        quantity=body.quantity,
        price=body.price,
        trigger_price=body.trigger_price,
        order_type=body.order_type.upper() if body.order_type else None,
        ip=_ip(request),
    )


@router.delete("/orders/{order_id}", response={200: OrderOut, **errors(409, 503)}, summary="Cancel an order")
def cancel(request: HttpRequest, order_id: int):
    require_scope(request, SCOPE_TRADE)  # an API key with scope read may not act
    order = _order_for(request, order_id, "trade")
    return services.cancel_order(actor=request.user, order=order, ip=_ip(request))


@router.post("/accounts/{account_id}/orders/cancel-all", response=list[OrderOut], summary="Cancel all open orders")
def cancel_all(request: HttpRequest, account_id: int):
    require_scope(request, SCOPE_TRADE)  # an API key with scope read may not act
    account = _account(request, account_id, "trade")
    return services.cancel_all(actor=request.user, account=account, ip=_ip(request))


@router.post("/positions/close", response={201: list[OrderOut], **errors(404, 429, 503)}, summary="Close a position")
def close_position(request: HttpRequest, body: ClosePositionIn):
    require_scope(request, SCOPE_TRADE)  # an API key with scope read may not act
    account = account_get_for_user(user=request.user, account_id=body.account_id, access="trade")
    orders = services.square_off(
        actor=request.user,
        account=account,
        instrument_id=body.instrument_id,
        product=body.product.upper(),
        source=Source.API,
        ip=_ip(request),
    )
    return Status(201, orders)


@router.get("/accounts/{account_id}/orders", response=list[OrderOut], summary="Order book")
def order_book(request: HttpRequest, account_id: int):
    account = _account(request, account_id, "view")
    return list(selectors.order_list(account=account)[:500])


@router.get("/accounts/{account_id}/trades", response=list[TradeOut], summary="Trade book")
def trade_book(request: HttpRequest, account_id: int):
    account = _account(request, account_id, "view")
    return list(selectors.trade_list(account=account)[:1000])


@router.get("/accounts/{account_id}/positions", response=list[PositionOut], summary="Positions with live MTM")
def positions(request: HttpRequest, account_id: int):
    account = _account(request, account_id, "view")
    return selectors.position_list(account=account)


@router.get(
    "/accounts/{account_id}/holdings",
    response={200: list[HoldingOut], **errors(409, 422, 429, 502, 503)},
    summary="Holdings at the broker, valued at the last quotes",
)
def holdings(request: HttpRequest, account_id: int):
    account = _account(request, account_id, "view")
    return [
        {
            "instrument_id": row.instrument.id,
            "exchange": row.instrument.exchange,
            "tradingsymbol": row.instrument.tradingsymbol,
            "quantity": row.quantity,
            "t1_quantity": row.t1_quantity,
            "average_price": row.average_price,
            "ltp": row.ltp,
            "close": row.close,
            "invested": row.invested,
            "value": row.value,
            "pnl": row.pnl,
            "pnl_percent": row.pnl_percent,
            "day_change": row.day_change,
            "day_change_percent": row.day_change_percent,
        }
        for row in holdings_get(account=account).rows
    ]


@router.get("/accounts/{account_id}/funds", response=FundsOut, summary="Funds and margin")
def funds(request: HttpRequest, account_id: int):
    account = _account(request, account_id, "view")
    return selectors.funds_get(account=account)


@router.post("/kill-switch", summary="Engage a kill switch: halt, cancel open orders, square off")
def kill_switch_on(request: HttpRequest, body: KillSwitchIn):
    require_scope(request, SCOPE_TRADE)  # an API key with scope read may not act
    return services.kill_switch_engage(
        actor=request.user, scope=body.scope, target_id=body.target_id, reason=body.reason or "manual", ip=_ip(request)
    )


@router.post("/kill-switch/release", summary="Lift a kill switch (Owner or Admin)")
def kill_switch_off(request: HttpRequest, body: KillSwitchIn):
    require_scope(request, SCOPE_TRADE)  # an API key with scope read may not act
    switch = kill_switch_release(actor=request.user, scope=body.scope, target_id=body.target_id, ip=_ip(request))
    return {"kill_switch": switch.key, "active": switch.active}
