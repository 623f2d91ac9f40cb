"""Network faults the paper exchange can be told to simulate, so outage handling is drilled end to end.

- ``drop_request``: the request (a new order or a modification) never reaches the exchange
  (BrokerUnavailable, nothing recorded or changed).
- ``lose_response``: the exchange records and matches the order (or applies the modification), but
  the answer and its updates are lost (BrokerUnavailable); only reconciliation through the order book
  can find out what happened.
Faults are per process and consumed once; nothing injects them in normal operation.
"""

from __future__ import annotations

import threading

DROP_REQUEST = "drop_request"
LOSE_RESPONSE = "lose_response"
ANY = "*"

_plan: dict[str, str] = {}
_lock = threading.Lock()


def inject(kind: str, *, client_order_id: str = ANY) -> None:
    with _lock:
        _plan[client_order_id] = kind


def clear() -> None:
    with _lock:
        _plan.clear()


def take(client_order_id: str) -> str | None:
    """Return and consume the fault planned for this order (or for any order), if any."""
    with _lock:
        return _plan.pop(client_order_id, None) or _plan.pop(ANY, None)
