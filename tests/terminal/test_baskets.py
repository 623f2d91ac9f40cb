"""Baskets from the page: build, save, edit, preview and place; an invalid leg is named and nothing is saved."""

import re
import uuid
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orders.models import Funds, Order
from terminal.models import SavedBasket, SavedBasketLeg
from tests.trading_world import _fresh_trading_state, world  # noqa: F401

HX = {"HTTP_HX_REQUEST": "true"}
pytestmark = pytest.mark.django_db


@pytest.fixture
def trader_client(client, world, otp_login):  # noqa: F811
    otp_login(client, world.trader)
    world.quote(world.equity, "1000", bid="999.95", ask="1000.05")
    world.quote(world.future, "20000", bid="19999", ask="20001")
    return client


def _legs(*legs: dict) -> dict:
    data = {"legs": str(len(legs))}
    for row, leg in enumerate(legs):
        data |= {f"leg-{row}-{field}": value for field, value in leg.items()}
    return data


def _leg(on, **changes) -> dict:
    instrument = on
    return {
        "instrument": str(instrument.pk),
        "side": "BUY",
        "lots": "1",
        "order_type": "LIMIT",
        "product": "NRML" if instrument.is_derivative else "MIS",
        "price": "19900" if instrument.is_derivative else "990",
        "trigger_price": "",
    } | changes


def _save(client, world, *legs, name="Hedge", **extra):  # noqa: F811
    return client.post(f"/trading/{world.account.pk}/baskets/edit/", {"name": name, **_legs(*legs), **extra})


def test_a_basket_of_two_legs_is_saved_and_listed(trader_client, world):  # noqa: F811
    response = _save(trader_client, world, _leg(world.future), _leg(world.future, side="SELL", price="20100", lots="2"))
    assert response.status_code == 200
    basket = SavedBasket.objects.get()
    assert (basket.name, basket.user, basket.account) == ("Hedge", world.trader, world.account)
    assert list(basket.legs.values_list("side", "quantity", "price")) == [
        ("BUY", 75, Decimal("19900")),
        ("SELL", 150, Decimal("20100")),
    ]
    page = trader_client.get(f"/trading/{world.account.pk}/baskets/").content.decode()
    assert f'id="basket-{basket.pk}"' in page and "S 150" in page


def test_editing_replaces_the_legs(trader_client, world):  # noqa: F811
    _save(trader_client, world, _leg(world.future), _leg(world.equity))
    basket = SavedBasket.objects.get()
    _save(trader_client, world, _leg(world.equity, lots="3"), name="Renamed", basket=str(basket.pk))
    basket.refresh_from_db()
    assert basket.name == "Renamed"
    assert list(basket.legs.values_list("instrument_id", "quantity")) == [(world.equity.pk, 3)]


def test_add_and_remove_rerender_the_editor_without_saving(trader_client, world):  # noqa: F811
    html = _save(trader_client, world, _leg(world.future), action="add").content.decode()
    assert 'name="leg-1-lots"' in html and not SavedBasket.objects.exists()
    html = _save(trader_client, world, _leg(world.future), _leg(world.equity), action="remove:0").content.decode()
    assert 'name="leg-1-lots"' not in html and 'name="legs" value="1"' in html


@pytest.mark.parametrize(
    ("leg", "code", "field"),
    [
        ({"instrument": "987654"}, "instrument_not_found", "instrument"),
        ({"instrument": "x"}, "instrument_not_found", "instrument"),
        ({"lots": "0"}, "lots_out_of_range", "lots"),
        ({"lots": "-3"}, "lots_out_of_range", "lots"),
        ({"lots": "1e40"}, "lots_out_of_range", "lots"),
        ({"lots": "1.5"}, "lots_not_whole", "lots"),
        ({"price": "abc"}, "price_not_a_number", "price"),
        ({"price": "1e400"}, "price_out_of_range", "price"),
        ({"side": "BUYX"}, "invalid_side", ""),
        ({"product": "CNC"}, "product_not_allowed_for_instrument", "product"),
        ({"price": "19900.01"}, "price_off_tick", "price"),
    ],
)
def test_an_invalid_leg_is_named_with_its_field_and_nothing_is_saved(trader_client, world, leg, code, field):  # noqa: F811
    response = _save(trader_client, world, _leg(world.equity), _leg(world.future, **leg))
    html = response.content.decode()
    assert response.status_code == 422
    assert re.search(rf'data-leg="1" data-code="{code}" data-field-error="{field}"', html), html[-3000:]
    assert not SavedBasket.objects.exists() and not SavedBasketLeg.objects.exists()


def test_a_lot_size_violation_cannot_be_posted_as_lots(trader_client, world):  # noqa: F811
    # Lots are whole by construction; the quantity a saved leg holds is always a lot multiple.
    _save(trader_client, world, _leg(world.future, lots="4"))
    assert SavedBasketLeg.objects.get().quantity % world.future.lot_size == 0


def test_an_invalid_edit_leaves_the_saved_basket_as_it_was(trader_client, world):  # noqa: F811
    _save(trader_client, world, _leg(world.future))
    basket = SavedBasket.objects.get()
    response = _save(trader_client, world, _leg(world.future, lots="0"), name="Changed", basket=str(basket.pk))
    assert response.status_code == 422
    basket.refresh_from_db()
    assert basket.name == "Hedge" and list(basket.legs.values_list("quantity", flat=True)) == [75]


def test_a_name_taken_or_empty_is_refused(trader_client, world):  # noqa: F811
    _save(trader_client, world, _leg(world.future))
    assert 'data-code="basket_name_taken"' in _save(trader_client, world, _leg(world.equity)).content.decode()
    assert (
        'data-code="basket_name_invalid"' in _save(trader_client, world, _leg(world.equity), name=" ").content.decode()
    )
    assert SavedBasket.objects.count() == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lots=st.one_of(st.text(max_size=30), st.integers(min_value=-(10**30), max_value=10**30).map(str)),
    price=st.one_of(st.text(max_size=30), st.decimals(allow_nan=True, allow_infinity=True).map(str)),
    legs=st.one_of(st.text(max_size=6), st.integers(min_value=-5, max_value=10**9).map(str)),
)
def test_any_posted_leg_is_saved_whole_or_refused_never_a_500(trader_client, world, lots, price, legs):  # noqa: F811
    SavedBasket.objects.all().delete()
    data = {"name": "Any", **_legs(_leg(world.future, lots=lots, price=price)), "legs": legs}
    response = trader_client.post(f"/trading/{world.account.pk}/baskets/edit/", data)
    assert response.status_code in {200, 400, 422}
    saved = SavedBasket.objects.filter(name="Any").first()
    if response.status_code != 200:
        assert saved is None and not SavedBasketLeg.objects.exists()
    elif saved is not None:
        assert saved.legs.count() >= 1


def test_the_basket_preview_is_the_margin_placing_blocks(trader_client, world):  # noqa: F811
    legs = (_leg(world.future), _leg(world.equity, lots="5"), _leg(world.future, side="SELL", price="20100"))
    html = trader_client.get(f"/trading/{world.account.pk}/baskets/preview/", _legs(*legs), **HX).content.decode()
    margin = Decimal(re.search(r'id="preview-margin" data-value="([^"]+)"', html).group(1))
    assert "no benefit across instruments" in html
    _save(trader_client, world, *legs)
    basket = SavedBasket.objects.get()
    trader_client.post(
        f"/trading/{world.account.pk}/baskets/place/", {"basket": basket.pk, "form_token": uuid.uuid4().hex}, **HX
    )
    assert Order.objects.count() == 3
    assert margin == Funds.objects.get(account=world.account).margin_blocked


def test_an_invalid_basket_preview_names_the_leg(trader_client, world):  # noqa: F811
    legs = (_leg(world.future), _leg(world.future, lots="abc"))
    response = trader_client.get(f"/trading/{world.account.pk}/baskets/preview/", _legs(*legs), **HX)
    assert response.status_code == 422 and "Leg 2:" in response.content.decode()


def test_placing_reports_each_leg_and_a_refused_leg_leaves_the_others_placed(trader_client, world):  # noqa: F811
    # The second leg sells delivery shares the account does not hold: refused by its rule, the others placed.
    _save(
        trader_client,
        world,
        _leg(world.future),
        _leg(world.equity, side="SELL", product="CNC", price="1010"),
        _leg(world.equity),
    )
    basket = SavedBasket.objects.get()
    response = trader_client.post(
        f"/trading/{world.account.pk}/baskets/place/", {"basket": basket.pk, "form_token": uuid.uuid4().hex}, **HX
    )
    html = response.content.decode()
    assert response.status_code == 200 and "2 of 3 legs placed" in html
    assert re.search(r'data-leg="1">.*?class="error" data-code="[a-z_]+"', html, re.S)
    assert Order.objects.count() == 2


def test_a_double_submitted_place_places_the_basket_once(trader_client, world):  # noqa: F811
    _save(trader_client, world, _leg(world.future), _leg(world.equity))
    basket = SavedBasket.objects.get()
    token = uuid.uuid4().hex
    for _ in range(2):
        trader_client.post(
            f"/trading/{world.account.pk}/baskets/place/", {"basket": basket.pk, "form_token": token}, **HX
        )
    assert Order.objects.count() == 2


@pytest.mark.parametrize("act", ["place", "delete"])
def test_another_users_basket_is_not_found(trader_client, world, act):  # noqa: F811
    basket = SavedBasket.objects.create(user=world.admin, account=world.account, name="Theirs")
    SavedBasketLeg.objects.create(
        basket=basket, position=0, instrument=world.equity, side="BUY", quantity=1, order_type="MARKET", product="MIS"
    )
    assert trader_client.get(f"/trading/{world.account.pk}/baskets/?basket={basket.pk}").status_code == 404
    response = trader_client.post(f"/trading/{world.account.pk}/baskets/{act}/", {"basket": basket.pk}, **HX)
    assert response.status_code == 422 and 'data-code="basket_not_found"' in response.content.decode()
    assert SavedBasket.objects.filter(pk=basket.pk).exists() and not Order.objects.exists()


@pytest.mark.parametrize("basket", ["", "x", "0", "-1", "99999999999999999999999"])
def test_a_malformed_basket_id_is_not_found(trader_client, world, basket):  # noqa: F811
    for act in ("place", "delete"):
        response = trader_client.post(f"/trading/{world.account.pk}/baskets/{act}/", {"basket": basket}, **HX)
        assert response.status_code == 422


def test_a_viewer_cannot_open_baskets(client, world, otp_login):  # noqa: F811
    otp_login(client, world.viewer)
    assert client.get(f"/trading/{world.account.pk}/baskets/").status_code == 403


def test_the_editor_opens_with_legs_given_in_the_address(trader_client, world):  # noqa: F811
    # How another page (the option chain's strategy builder) hands its legs over to be saved and placed.
    query = _legs(_leg(world.future), _leg(world.future, side="SELL", price="20100"))
    html = trader_client.get(f"/trading/{world.account.pk}/baskets/", query).content.decode()
    assert 'name="legs" value="2"' in html and 'value="20100"' in html
