"""The order management system's writes, one module per act.

Every path (browser form, REST API, strategy, webhook, square-off, kill switch) places through
``placement.place_order``; broker updates of any kind go through ``broker_updates``. None of the acts
may be called inside an open transaction: a broker outside this database must only ever see
committed orders.

- ``requests``: ``OrderRequest`` and the checks on it before any rule runs; how a refusal is audited
- ``risk_state``: what the pre-trade check reads under the account lock
- ``placement``: ``place_order`` and sending a new order to its broker
- ``slices``: ``place_sliced_order``, an order above the freeze quantity as exchange-legal children
- ``baskets``: ``check_basket``, ``place_basket``
- ``broker_updates``: ``apply_broker_updates`` (status changes and fills)
- ``amendments``: ``modify_order``, ``cancel_order``, ``cancel_all``
- ``square_off``: ``square_off``, ``square_off_all``, ``square_off_intraday``
- ``reconciliation``: ``reconcile_order``, for orders whose broker call went unanswered;
  ``reconcile_account``, every working order of an account after its broker's stream was interrupted
- ``gtt``: ``gtt_place``, ``gtt_modify``, ``gtt_delete``, ``gtt_list`` (good-till-triggered orders at the broker)
- ``kill_switch``: ``kill_switch_engage``, the order side of a kill switch
- ``broker_failures``, ``events``: an order settled after a failed broker call; its event rows

This module re-exports the acts' public names, so ``from orders.services import place_order`` works.
"""

from orders.services.amendments import cancel_all, cancel_order, modify_order
from orders.services.baskets import BasketResult, check_basket, place_basket
from orders.services.broker_updates import apply_broker_update, apply_broker_updates
from orders.services.gtt import GttRequest, gtt_delete, gtt_list, gtt_modify, gtt_place
from orders.services.kill_switch import enforce_kill_switch, kill_switch_engage
from orders.services.placement import place_order
from orders.services.reconciliation import reconcile_account, reconcile_order
from orders.services.requests import OrderRequest
from orders.services.slices import MAX_SLICES, place_sliced_order, slice_quantities
from orders.services.square_off import square_off, square_off_all, square_off_intraday

__all__ = [
    "MAX_SLICES",
    "BasketResult",
    "GttRequest",
    "OrderRequest",
    "apply_broker_update",
    "apply_broker_updates",
    "cancel_all",
    "cancel_order",
    "check_basket",
    "enforce_kill_switch",
    "gtt_delete",
    "gtt_list",
    "gtt_modify",
    "gtt_place",
    "kill_switch_engage",
    "modify_order",
    "place_basket",
    "place_order",
    "place_sliced_order",
    "reconcile_account",
    "reconcile_order",
    "slice_quantities",
    "square_off",
    "square_off_all",
    "square_off_intraday",
]
