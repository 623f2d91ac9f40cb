"""The order system takes its row locks in orders/locks.py only, where their order is kept (accounts
first, in key order, then orders)."""

from pathlib import Path

ORDERS = Path(__file__).resolve().parents[2] / "orders"


def test_no_order_module_but_locks_takes_a_row_lock():
    takers = [
        str(path.relative_to(ORDERS.parent))
        for path in ORDERS.rglob("*.py")
        if "migrations" not in path.parts and "select_for_update" in path.read_text()
    ]
    assert takers == ["orders/locks.py"]
