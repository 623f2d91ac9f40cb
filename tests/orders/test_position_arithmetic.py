"""What a fill does to a position (orders.positions): average cost on adding, realised P&L on reducing,
flips from long to short and back in one fill, and fills split any way netting to the same position."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from orders.positions import PRICE_PLACES, PositionFigures, apply_fill, unrealised_pnl

D = Decimal
FLAT = PositionFigures()


def _fills(figures: PositionFigures, *fills: tuple[str, int, str]) -> tuple[PositionFigures, list[Decimal]]:
    realised = []
    for side, quantity, price in fills:
        figures, pnl = apply_fill(figures, side=side, quantity=quantity, price=D(price))
        realised.append(pnl)
    return figures, realised


def test_buying_into_a_flat_position_opens_it_at_the_fill_price():
    long, [pnl] = _fills(FLAT, ("BUY", 10, "100.05"))
    assert (long.net_quantity, long.average_price, long.realised_pnl, pnl) == (10, D("100.05"), 0, 0)
    assert (long.buy_quantity, long.buy_value, long.sell_quantity, long.sell_value) == (10, D("1000.50"), 0, 0)


def test_adding_to_a_position_moves_the_average_to_the_weighted_average():
    long, realised = _fills(FLAT, ("BUY", 10, "100"), ("BUY", 30, "104"))
    assert (long.net_quantity, long.average_price, realised) == (40, D("103"), [0, 0])  # (1,000 + 3,120) / 40
    short, _ = _fills(FLAT, ("SELL", 1, "1"), ("SELL", 2, "2"))
    assert (short.net_quantity, short.average_price) == (-3, D("1.6667"))  # 5 / 3, to the columns' 4 places


def test_reducing_a_long_realises_the_gain_on_the_quantity_closed_and_keeps_the_average():
    long, [_, _, pnl] = _fills(FLAT, ("BUY", 10, "100"), ("BUY", 30, "104"), ("SELL", 10, "110"))
    assert (long.net_quantity, long.average_price, long.realised_pnl, pnl) == (30, D("103"), D("70"), D("70"))


def test_reducing_a_short_realises_the_fall_in_price_as_a_gain():
    short, [_, pnl] = _fills(FLAT, ("SELL", 10, "100"), ("BUY", 4, "95"))
    assert (short.net_quantity, short.average_price, pnl) == (-6, D("100"), D("20"))
    short, [_, loss] = _fills(FLAT, ("SELL", 10, "100"), ("BUY", 4, "101.5"))
    assert loss == D("-6")


def test_one_fill_that_flips_long_to_short_realises_on_the_closed_part_and_opens_the_rest_at_the_fill_price():
    short, [_, pnl] = _fills(FLAT, ("BUY", 10, "100"), ("SELL", 25, "110"))
    assert (short.net_quantity, short.average_price, pnl) == (-15, D("110"), D("100"))  # 10 x (110 - 100)
    assert (short.buy_quantity, short.sell_quantity, short.sell_value) == (10, 25, D("2750"))


def test_one_fill_that_flips_short_back_to_long_does_the_same_the_other_way():
    long, [_, _, pnl] = _fills(FLAT, ("BUY", 10, "100"), ("SELL", 25, "110"), ("BUY", 20, "105"))
    assert (long.net_quantity, long.average_price, pnl) == (5, D("105"), D("75"))  # 15 x (110 - 105)
    assert long.realised_pnl == D("175")


def test_a_fill_that_closes_the_position_exactly_leaves_it_flat_at_no_average():
    flat, [_, pnl] = _fills(FLAT, ("BUY", 10, "100"), ("SELL", 10, "99"))
    assert (flat.net_quantity, flat.average_price, flat.realised_pnl, pnl) == (0, 0, D("-10"), D("-10"))
    reopened, _ = _fills(flat, ("SELL", 5, "98"))
    assert (reopened.net_quantity, reopened.average_price, reopened.realised_pnl) == (-5, D("98"), D("-10"))


def test_partial_fills_add_up_to_the_same_position_as_one_fill():
    long, _ = _fills(FLAT, ("BUY", 10, "100"))
    whole, [pnl] = _fills(long, ("SELL", 25, "110"))
    parts, pnls = _fills(long, ("SELL", 5, "110"), ("SELL", 5, "110"), ("SELL", 9, "110"), ("SELL", 6, "110"))
    assert parts == whole and sum(pnls) == pnl == D("100")


def test_the_unrealised_pnl_marks_the_open_quantity_to_the_price():
    assert unrealised_pnl(10, D("100"), D("105")) == D("50")
    assert unrealised_pnl(-10, D("100"), D("105")) == D("-50")
    assert unrealised_pnl(0, D("0"), D("105")) == 0
    assert unrealised_pnl(10, D("100"), None) == 0  # no price, no mark


# --- properties -------------------------------------------------------------------------------------

sides = st.sampled_from(["BUY", "SELL"])
prices = st.integers(1, 200_000).map(lambda ticks: D(ticks) * D("0.05"))  # ₹0.05 to ₹10,000 in ticks
fills = st.lists(st.tuples(sides, st.integers(1, 500), prices), max_size=30)


@given(fills=fills, mark=prices)
def test_realised_plus_unrealised_pnl_is_the_cash_flow_of_the_fills_marked_to_a_price(fills, mark):
    figures, rounding = FLAT, D(0)
    for side, quantity, price in fills:
        adds = figures.net_quantity and (figures.net_quantity > 0) == (side == "BUY")
        figures, _ = apply_fill(figures, side=side, quantity=quantity, price=price)
        if adds:  # the new average is rounded to 4 places: at most one place's worth on each unit held
            rounding += abs(figures.net_quantity) * PRICE_PLACES
    cash = figures.sell_value - figures.buy_value
    pnl = figures.realised_pnl + unrealised_pnl(figures.net_quantity, figures.average_price, mark)
    assert abs(pnl - (cash + figures.net_quantity * mark)) <= rounding
    assert figures.net_quantity == figures.buy_quantity - figures.sell_quantity


@given(before=fills, side=sides, parts=st.lists(st.integers(1, 200), min_size=1, max_size=6), price=prices)
def test_a_fill_split_any_way_nets_to_the_same_position_as_the_whole_fill(before, side, parts, price):
    start, _ = _fills(FLAT, *before)
    whole, realised = apply_fill(start, side=side, quantity=sum(parts), price=price)
    split, realised_parts = start, D(0)
    for quantity in parts:
        split, pnl = apply_fill(split, side=side, quantity=quantity, price=price)
        realised_parts += pnl
    assert realised_parts == realised
    assert (split.net_quantity, split.realised_pnl) == (whole.net_quantity, whole.realised_pnl)
    assert (split.buy_quantity, split.buy_value) == (whole.buy_quantity, whole.buy_value)
    assert (split.sell_quantity, split.sell_value) == (whole.sell_quantity, whole.sell_value)
    if start.net_quantity and (start.net_quantity > 0) == (side == "BUY"):
        # Adding to a position at another price: each part rounds the average to 4 places.
        assert abs(split.average_price - whole.average_price) <= len(parts) * PRICE_PLACES
    else:
        assert split.average_price == whole.average_price
