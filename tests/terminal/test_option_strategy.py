"""The option chain's Greeks, one-click trading and the strategy builder, through the views."""

import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketdata.greeks import black76_greeks
from marketdata.models import Instrument
from marketdata.options import years_to_expiry
from orders.models import Order
from tests.trading_world import _fresh_trading_state, world  # noqa: F401

HX = {"HTTP_HX_REQUEST": "true"}
# Anything a browser can send but NUL (refused before any view: see the NUL test below).
ALPHABET = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")


def TEXT(max_size: int):
    return st.text(alphabet=ALPHABET, max_size=max_size)


STRIKES = range(25800, 26250, 50)
FUTURE, VOL, RATE = 26100.0, 0.15, 0.065


@pytest.fixture
def chain(world):  # noqa: F811
    """NIFTY with an index, the world's future (26,100) and calls and puts of the future's expiry,
    each quoted at its Black-76 price at 15% volatility."""
    expiry = world.future.expiry
    world.spot = Instrument.objects.create(
        exchange="NSE", segment="INDICES", tradingsymbol="NIFTY 50", exchange_token="256265",
        instrument_type="INDEX", underlying="NIFTY", tick_size=Decimal("0.05"), lot_size=1,
    )  # fmt: skip
    world.options = {}
    years = years_to_expiry(expiry, timezone.now())
    for strike in STRIKES:
        for kind in ("CE", "PE"):
            option = Instrument.objects.create(
                exchange="NFO", segment="NFO-OPT", tradingsymbol=f"NIFTY{strike}{kind}",
                exchange_token=f"{strike}{1 if kind == 'CE' else 2}", instrument_type=kind, underlying="NIFTY",
                expiry=expiry, strike=Decimal(strike), lot_size=75, tick_size=Decimal("0.05"), freeze_quantity=1800,
            )  # fmt: skip
            world.options[(strike, kind)] = option
            price = black76_greeks(future=FUTURE, strike=strike, years=years, vol=VOL, call=kind == "CE", rate=RATE)
            world.quote(option, round(price.price * 20) / 20, tick=False)
    world.quote(world.spot, "26000", tick=False)
    world.quote(world.future, "26100", tick=False)
    return world


@pytest.fixture
def trader(client, chain, otp_login):
    otp_login(client, chain.trader)
    return client


def _post(client, world, **fields):  # noqa: F811
    data = {"underlying": "NIFTY", "strikes": "5", "account": world.account.pk, "form_token": uuid.uuid4().hex}
    return client.post("/options/strategy/", data | fields, **HX)


def _legs(*legs):
    """Form fields of legs given as (instrument, side, lots, price)."""
    return {
        "leg_instrument": [str(i.pk) for i, *_ in legs],
        "leg_side": [s for _, s, *_ in legs],
        "leg_lots": [str(n) for _, _, n, _ in legs],
        "leg_price": [p for *_, p in legs],
    }


def _ltp(world, strike, kind):  # noqa: F811
    from marketdata.quotes import get_quote

    return get_quote(world.options[(strike, kind)].pk).ltp


def test_the_chain_shows_greeks_by_black76_on_the_future_of_the_same_expiry(trader, chain):
    page = trader.get("/options/?underlying=NIFTY&strikes=5").content.decode()
    assert "Greeks by Black-76 on NIFTYFUT at 26,100.00" in page
    assert "Θ in ₹ per calendar day, Vega in ₹ per 1 point of volatility" in page
    # The 26,100 call is at the money of the future: delta about e^(-rT)/2 + a little, shown to 2 places.
    row = page.split('data-strike="26100"')[1].split("</tr>")[0]
    delta = re.search(r'class="num greek delta[^"]*">([^<]+)<', row).group(1)
    assert 0.5 <= float(delta) <= 0.56
    iv = re.search(r'class="num iv[^"]*">([^<]+)<', row).group(1)
    assert float(iv) == pytest.approx(15.0, abs=0.1)  # the IV recovers the 15% the prices were made at


def test_each_option_opens_the_ticket_with_one_click_and_the_ticket_is_prefilled(trader, chain):
    page = trader.get("/options/?underlying=NIFTY&strikes=5").content.decode()
    call = chain.options[(26000, "CE")]
    cell = page.split(f'<td class="act" data-instrument="{call.pk}">')[1].split("</td>")[0]
    assert 'data-ticket-side="BUY"' in cell and 'data-ticket-side="SELL"' in cell
    assert f'data-ticket-url="/trading/{chain.account.pk}/ticket/"' in page and '<dialog id="ticket"' in page
    ticket = trader.get(f"/trading/{chain.account.pk}/ticket/?instrument={call.pk}&side=SELL", **HX).content.decode()
    assert "NIFTY26000CE" in ticket and 'value="SELL" checked' in ticket and 'name="lots"' in ticket


def test_a_viewer_gets_greeks_but_no_trading_buttons(client, chain, otp_login):
    otp_login(client, chain.viewer)
    page = client.get(f"/options/?underlying=NIFTY&account={chain.account.pk}").content.decode()
    assert "data-ticket-side" not in page and 'value="place"' not in page and "Greeks by" in page


def test_plus_b_adds_a_bought_leg_at_the_last_price(trader, chain):
    call = chain.options[(26000, "CE")]
    response = _post(trader, chain, add=f"{call.pk}:BUY")
    body = response.content.decode()
    assert response.status_code == 200 and body.lstrip().startswith('<section id="strategy"')
    premium = _ltp(chain, 26000, "CE")
    assert "NIFTY26000CE" in body and f"debit {_inr(-premium * 75)}" in body
    assert 'id="max-profit" class="up">Unlimited<' in body


def _inr(amount: Decimal) -> str:
    from terminal.templatetags.terminal_format import inr

    return str(inr(amount))


def test_a_straddle_from_its_template_shows_its_payoff_margin_and_chart(trader, chain):
    response = _post(trader, chain, template="long_straddle")
    body = response.content.decode()
    assert response.status_code == 200
    assert body.count('class="leg leg-buy"') == 2
    assert "NIFTY26000CE" in body and "NIFTY26000PE" in body  # the strike nearest the spot
    c, p = _ltp(chain, 26000, "CE"), _ltp(chain, 26000, "PE")
    assert f"debit {_inr(-(c + p) * 75)}" in body
    assert f'id="max-loss" class="down">{_inr(-(c + p) * 75)}<' in body
    assert _breakevens_in(body, Decimal(26000) - (c + p), Decimal(26000) + (c + p))
    # Bought options block their premium at the paper exchange: margin = the debit.
    assert f'id="strategy-margin">{_inr((c + p) * 75)}<' in body
    assert '<svg id="payoff-chart"' in body and 'class="expiry" points="' in body and 'class="today"' in body


def _breakevens_in(body: str, low: Decimal, high: Decimal) -> bool:
    text = body.split('id="breakevens">')[1].split("</dd>")[0]
    numbers = [Decimal(x.replace(",", "")) for x in re.findall(r"[\d,]+\.\d\d", text)]
    return numbers == [low, high]


def test_placing_the_straddle_places_both_legs_as_a_basket_and_reports_each(trader, chain):
    token = uuid.uuid4().hex
    form = _legs((chain.options[(26100, "CE")], "BUY", 2, ""), (chain.options[(26100, "PE")], "BUY", 2, ""))
    response = _post(trader, chain, action="place", form_token=token, **form)
    body = response.content.decode()
    assert response.status_code == 200
    orders = list(Order.objects.order_by("pk"))
    assert [(o.instrument.tradingsymbol, o.side, o.quantity, o.product, o.order_type) for o in orders] == [
        ("NIFTY26100CE", "BUY", 150, "NRML", "LIMIT"),
        ("NIFTY26100PE", "BUY", 150, "NRML", "LIMIT"),
    ]
    assert orders[0].price == _ltp(chain, 26100, "CE")
    assert body.count('class="placed" data-order=') == 2
    _post(trader, chain, action="place", form_token=token, **form)  # a double submit: the same basket
    assert Order.objects.count() == 2


def test_a_basket_with_a_leg_the_order_rules_refuse_places_nothing_and_names_the_leg(trader, chain):
    form = _legs(
        (chain.options[(26100, "CE")], "BUY", 1, ""),
        (chain.options[(26100, "PE")], "BUY", 1, "100.03"),  # not a multiple of the 0.05 tick
    )
    response = _post(trader, chain, action="place", **form)
    body = response.content.decode()
    assert response.status_code == 422 and Order.objects.count() == 0
    assert 'data-code="basket_invalid"' in body
    refused = body.split('id="leg-1"')[1].split("</tr>")[0]
    assert 'class="error" data-code="' in refused and "tick" in refused.lower()


@pytest.mark.parametrize(
    ("legs", "field", "code"),
    [
        ({"leg_instrument": ["999999"], "leg_side": ["BUY"], "leg_lots": ["1"]}, "legs[0].instrument", None),
        ({"leg_instrument": ["abc"], "leg_side": ["BUY"], "leg_lots": ["1"]}, "legs[0].instrument", None),
        ({"leg_instrument": [""], "leg_side": ["BUY"], "leg_lots": ["1"]}, "legs[0].instrument", None),
        ({"leg_instrument": ["9" * 30], "leg_side": ["BUY"], "leg_lots": ["1"]}, "legs[0].instrument", None),
        ({"leg_side": ["HOLD"], "leg_lots": ["1"]}, "legs[0].side", "leg_side_invalid"),
        ({"leg_side": ["BUY"], "leg_lots": ["0"]}, "legs[0].lots", "lots_out_of_range"),
        ({"leg_side": ["BUY"], "leg_lots": ["-3"]}, "legs[0].lots", "lots_out_of_range"),
        ({"leg_side": ["BUY"], "leg_lots": ["1" * 400]}, "legs[0].lots", "lots_out_of_range"),
        ({"leg_side": ["BUY"], "leg_lots": ["1.5"]}, "legs[0].lots", "lots_not_whole"),
        ({"leg_side": ["BUY"], "leg_lots": ["1"], "leg_price": ["-5"]}, "legs[0].price", "price_not_positive"),
        ({"leg_side": ["BUY"], "leg_lots": ["1"], "leg_price": ["NaN"]}, "legs[0].price", "price_not_finite"),
    ],
)
def test_a_bad_leg_is_a_422_naming_its_field_and_nothing_is_placed(trader, chain, legs, field, code):
    legs = {"leg_instrument": [str(chain.options[(26000, "CE")].pk)]} | legs
    response = _post(trader, chain, action="place", **legs)
    body = response.content.decode()
    assert response.status_code == 422
    assert f'data-field="{field}"' in body
    if code:
        assert f'data-code="{code}"' in body
    assert Order.objects.count() == 0


def test_a_leg_of_another_underlying_or_expiry_is_refused(trader, chain):
    other = Instrument.objects.create(
        exchange="NFO", segment="NFO-OPT", tradingsymbol="NIFTYNEXT26000CE", exchange_token="99",
        instrument_type="CE", underlying="NIFTY", expiry=chain.future.expiry + timedelta(days=7),
        strike=Decimal(26000), lot_size=75, tick_size=Decimal("0.05"),
    )  # fmt: skip
    response = _post(trader, chain, add=f"{other.pk}:BUY")
    assert response.status_code == 422 and 'data-code="leg_not_in_chain"' in response.content.decode()


def test_too_many_legs_are_refused(trader, chain):
    option = chain.options[(26000, "CE")]
    form = _legs(*[(option, "BUY", 1, "")] * 9)
    response = _post(trader, chain, **form)
    assert response.status_code == 422 and 'data-code="too_many_legs"' in response.content.decode()


def test_an_unknown_template_is_refused(trader, chain):
    response = _post(trader, chain, template="butterfly")
    assert response.status_code == 422 and 'data-code="template_unknown"' in response.content.decode()


@pytest.mark.parametrize("field", ["leg_lots", "leg_side", "leg_instrument", "template", "underlying"])
def test_a_nul_byte_in_any_field_is_refused_before_the_builder_and_nothing_is_placed(trader, chain, field):
    form = _legs((chain.options[(26100, "CE")], "BUY", 1, "")) | {field: "1\x00"}
    response = _post(trader, chain, action="place", **form)
    assert response.status_code == 400 and b"NUL character" in response.content
    assert Order.objects.count() == 0


def test_a_viewer_cannot_place_a_strategy(client, chain, otp_login):
    otp_login(client, chain.viewer)
    form = _legs((chain.options[(26100, "CE")], "BUY", 1, ""))
    response = _post(client, chain, action="place", **form)
    assert response.status_code == 422 and 'data-code="account_cannot_trade"' in response.content.decode()
    assert Order.objects.count() == 0


def test_removing_a_leg_keeps_the_others(trader, chain):
    form = _legs((chain.options[(26100, "CE")], "BUY", 1, ""), (chain.options[(26100, "PE")], "SELL", 1, ""))
    body = _post(trader, chain, remove="0", **form).content.decode()
    assert "NIFTY26100PE" in body and "NIFTY26100CE" not in body


def test_without_htmx_the_builder_answers_the_whole_page(trader, chain):
    response = trader.post("/options/strategy/", {"underlying": "NIFTY", "strikes": "5", "template": "iron_condor"})
    body = response.content.decode()
    assert response.status_code == 200 and "<html" in body and body.count('class="leg leg-') == 4


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    instrument=st.one_of(TEXT(max_size=30), st.integers().map(str)),
    side=st.one_of(TEXT(max_size=10), st.sampled_from(["BUY", "SELL", "buy"])),
    lots=st.one_of(TEXT(max_size=50), st.integers().map(str), st.floats().map(str)),
    price=st.one_of(TEXT(max_size=50), st.floats().map(str), st.just("")),
)
def test_any_leg_is_either_analysed_or_refused_by_name_never_a_500(trader, chain, instrument, side, lots, price):
    response = _post(
        trader,
        chain,
        action="place",
        leg_instrument=[instrument],
        leg_side=[side],
        leg_lots=[lots],
        leg_price=[price],
    )
    assert response.status_code in (200, 422), response.status_code
    if response.status_code == 422:
        assert 'role="alert"' in response.content.decode()


def test_a_leg_a_risk_rule_refuses_at_placement_is_reported_with_its_reason_beside_the_placed_one(trader, chain):
    from rms import limits
    from rms.models import RiskLimit

    RiskLimit.objects.create(account=chain.account, max_open_orders=1)
    limits.invalidate()
    # Bids well under the market rest in the book: the second leg would be a second open order.
    form = _legs((chain.options[(26100, "CE")], "BUY", 1, "1.00"), (chain.options[(26100, "PE")], "BUY", 1, "1.00"))
    response = _post(trader, chain, action="place", **form)
    body = response.content.decode()
    assert response.status_code == 200
    assert Order.objects.filter(status="OPEN").count() == 1
    placed, refused = body.split('id="leg-0"')[1].split("</tr>")[0], body.split('id="leg-1"')[1].split("</tr>")[0]
    assert 'class="placed"' in placed
    assert 'class="error" data-code="' in refused and "open orders" in refused.lower()


@pytest.mark.parametrize(
    ("amount", "label"),
    [("950", "950"), ("22268", "22.3k"), ("-44138", "-44.1k"), ("125000", "1.25L"), ("-3400000", "-34L"), ("0", "0")],
)
def test_the_charts_axis_labels_are_short_enough_for_a_phone(amount, label):
    from terminal.views.option_chain import _short_amount

    assert _short_amount(Decimal(amount)) == label
