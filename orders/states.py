"""The order state machine: the one table of allowed transitions.

The services in ``orders.services`` move an order only to a status this table allows from the one
they read: under the order's row lock (taken after its account's, ``orders.locks``), checked with
``can_move`` or against the statuses a modify or cancel accepts; or, for a PENDING order being sent
(``placement._send``), with a conditional update from PENDING that changes one row or none. So a
transition not listed here cannot happen, whatever the order of broker updates and user actions.
"""

from __future__ import annotations

from django.db import models


class Status(models.TextChoices):
    PENDING = "PENDING", "Pending"  # validated and recorded, not yet acknowledged by the broker
    OPEN = "OPEN", "Open"
    TRIGGER_PENDING = "TRIGGER_PENDING", "Trigger pending"
    PARTIALLY_FILLED = "PARTIALLY_FILLED", "Partially filled"
    FILLED = "FILLED", "Filled"
    CANCELLED = "CANCELLED", "Cancelled"
    REJECTED = "REJECTED", "Rejected"
    UNKNOWN = "UNKNOWN", "Unknown"  # a broker call's outcome is unknown; reconciliation resolves it


TERMINAL = frozenset({Status.FILLED, Status.CANCELLED, Status.REJECTED})
LIVE = frozenset({Status.PENDING, Status.OPEN, Status.TRIGGER_PENDING, Status.PARTIALLY_FILLED, Status.UNKNOWN})
WORKING = frozenset({Status.OPEN, Status.TRIGGER_PENDING, Status.PARTIALLY_FILLED})  # resting at the broker

_AFTER_ACK = {
    Status.OPEN,
    Status.TRIGGER_PENDING,
    Status.PARTIALLY_FILLED,
    Status.FILLED,
    Status.CANCELLED,
    Status.REJECTED,
}

ALLOWED: dict[str, frozenset[str]] = {
    Status.PENDING: frozenset(_AFTER_ACK | {Status.UNKNOWN}),
    Status.UNKNOWN: frozenset(_AFTER_ACK),
    # A resting order may stay where it is (modified) or move on; OPEN <-> TRIGGER_PENDING covers
    # a stop order being triggered and a modify turning a limit into a stop.
    Status.OPEN: frozenset(
        {Status.OPEN, Status.TRIGGER_PENDING, Status.PARTIALLY_FILLED, Status.FILLED, Status.CANCELLED, Status.REJECTED}
    ),
    Status.TRIGGER_PENDING: frozenset(
        {Status.TRIGGER_PENDING, Status.OPEN, Status.PARTIALLY_FILLED, Status.FILLED, Status.CANCELLED, Status.REJECTED}
    ),
    Status.PARTIALLY_FILLED: frozenset({Status.PARTIALLY_FILLED, Status.FILLED, Status.CANCELLED}),
    Status.FILLED: frozenset(),
    Status.CANCELLED: frozenset(),
    Status.REJECTED: frozenset(),
}


def can_move(current: str, new: str) -> bool:
    """Return whether ``current`` -> ``new`` is an allowed transition."""
    return new in ALLOWED[current]
