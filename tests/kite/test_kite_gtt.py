"""GTT orders through the order system and the KiteAdapter against the local Kite server: the exact
requests for place (single and OCO), modify, delete and list; a broker without GTT; bad input refused
with its code before anything is sent; broker errors passed through; the audit of each act."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from brokers.adapters.base import BrokerRejected, GttLeg, GttOrder
from brokers.adapters.registry import adapter_for
from brokers.errors import BrokerAccountForbidden
from orders.errors import GttInvalid
from orders.services import GttRequest, gtt_delete, gtt_list, gtt_modify, gtt_place
from tests.kite import fake_kite as fk

pytestmark = pytest.mark.django_db(transaction=True)
TRIGGERS = "/gtt/triggers"


def single(world, **changes) -> GttRequest:
    fields = {
        "instrument_id": world.equity.pk,
        "kind": "single",
        "side": "BUY",
        "quantity": 10,
        "product": "CNC",
        "trigger_price": Decimal("950"),
        "price": Decimal("951.5"),
    }
    return GttRequest(**(fields | changes))


def oco(world, **changes) -> GttRequest:
    fields = {
        "instrument_id": world.equity.pk,
        "kind": "oco",
        "side": "SELL",
        "quantity": 10,
        "product": "CNC",
        "stoploss_trigger": Decimal("950"),
        "stoploss_price": Decimal("949"),
        "target_trigger": Decimal("1050"),
        "target_price": Decimal("1051.05"),
    }
    return GttRequest(**(fields | changes))


def _sent(recorded) -> dict:
    form = recorded.form_dict
    return {"type": form["type"], "condition": json.loads(form["condition"]), "orders": json.loads(form["orders"])}


def test_a_single_gtt_is_sent_with_the_exact_request_and_audited(world, kite_account, fake_kite):
    trigger_id = gtt_place(actor=world.trader, account_id=kite_account.pk, request=single(world))
    assert trigger_id == "100" and 100 in fake_kite.gtts
    sent = fake_kite.last("POST", TRIGGERS)
    assert sent.headers["authorization"] == f"token {fk.API_KEY}:{fk.ACCESS_TOKEN}"
    assert _sent(sent) == {
        "type": "single",
        "condition": {"exchange": "NSE", "tradingsymbol": "RELIANCE", "trigger_values": [950.0], "last_price": 1000.0},
        "orders": [
            {
                "exchange": "NSE",
                "tradingsymbol": "RELIANCE",
                "transaction_type": "BUY",
                "quantity": 10,
                "order_type": "LIMIT",
                "product": "CNC",
                "price": 951.5,
            }
        ],
    }
    event = AuditEvent.objects.get(action="gtt.placed")
    assert event.payload_data["trigger_id"] == "100" and event.payload_data["kind"] == "single"


def test_an_oco_gtt_sends_the_stop_loss_first_and_the_target_second(world, kite_account, fake_kite):
    gtt_place(actor=world.trader, account_id=kite_account.pk, request=oco(world))
    sent = _sent(fake_kite.last("POST", TRIGGERS))
    assert sent["type"] == "two-leg"
    assert sent["condition"] == {
        "exchange": "NSE",
        "tradingsymbol": "RELIANCE",
        "trigger_values": [950.0, 1050.0],
        "last_price": 1000.0,
    }
    leg = {"exchange": "NSE", "tradingsymbol": "RELIANCE", "transaction_type": "SELL", "quantity": 10}
    assert sent["orders"] == [
        leg | {"order_type": "LIMIT", "product": "CNC", "price": 949.0},
        leg | {"order_type": "LIMIT", "product": "CNC", "price": 1051.05},
    ]


def test_modify_puts_the_new_terms_on_the_same_trigger(world, kite_account, fake_kite):
    trigger_id = gtt_place(actor=world.trader, account_id=kite_account.pk, request=oco(world))
    changed = oco(world, stoploss_trigger=Decimal("960"), stoploss_price=Decimal("959.95"), quantity=5)
    assert gtt_modify(actor=world.trader, account_id=kite_account.pk, trigger_id=trigger_id, request=changed) == "100"
    sent = fake_kite.last("PUT")
    assert sent.path == f"{TRIGGERS}/100"
    body = _sent(sent)
    assert body["condition"]["trigger_values"] == [960.0, 1050.0]
    assert [(o["quantity"], o["price"]) for o in body["orders"]] == [(5, 959.95), (5, 1051.05)]
    assert AuditEvent.objects.filter(action="gtt.modified").count() == 1


def test_delete_removes_the_trigger_at_kite_and_is_audited(world, kite_account, fake_kite):
    trigger_id = gtt_place(actor=world.trader, account_id=kite_account.pk, request=single(world))
    gtt_delete(actor=world.trader, account_id=kite_account.pk, trigger_id=trigger_id)
    assert fake_kite.last("DELETE").path == f"{TRIGGERS}/100"
    assert not fake_kite.gtts
    assert AuditEvent.objects.get(action="gtt.deleted").payload_data == {
        "account_id": kite_account.pk,
        "trigger_id": "100",
    }


def test_the_list_reads_kites_gtt_book_as_typed_values_on_our_instruments(world, kite_account, fake_kite):
    gtt_place(actor=world.trader, account_id=kite_account.pk, request=single(world))
    gtt_place(actor=world.trader, account_id=kite_account.pk, request=oco(world))
    gtts = gtt_list(actor=world.viewer, account_id=kite_account.pk)  # a viewer may read the book
    assert fake_kite.last("GET").path == TRIGGERS
    by_id = {g.trigger_id: g for g in gtts}
    assert set(by_id) == {"100", "101"}
    first, second = by_id["100"], by_id["101"]
    assert (first.kind, first.status, first.instrument_id) == ("single", "ACTIVE", world.equity.pk)
    assert first.legs == (GttLeg(Decimal("950"), "BUY", 10, Decimal("951.5"), "CNC", "LIMIT"),)
    assert second.kind == "oco" and [leg.trigger_price for leg in second.legs] == [Decimal("950"), Decimal("1050")]
    assert all(isinstance(leg.price, Decimal) for leg in second.legs)


def test_the_adapter_reads_the_last_price_from_the_quote_store_when_not_given(world, kite_account, fake_kite):
    leg = GttLeg(Decimal("950"), "BUY", 1, Decimal("950"), "CNC")
    adapter_for(kite_account).gtt_place(GttOrder(instrument_id=world.equity.pk, kind="single", legs=(leg,)))
    assert _sent(fake_kite.last("POST", TRIGGERS))["condition"]["last_price"] == 1000.0


def test_a_paper_account_has_no_gtt_and_nothing_is_sent(world, kite_account, fake_kite):
    for act in (
        lambda: gtt_place(actor=world.trader, account_id=world.account.pk, request=single(world)),
        lambda: gtt_delete(actor=world.trader, account_id=world.account.pk, trigger_id="100"),
        lambda: gtt_list(actor=world.trader, account_id=world.account.pk),
        lambda: adapter_for(world.account).gtt_list(),
    ):
        with pytest.raises(BrokerRejected) as refused:
            act()
        assert refused.value.code == "broker_cannot_gtt" and refused.value.status == 422
    assert not fake_kite.count("POST", TRIGGERS) and not AuditEvent.objects.filter(action__startswith="gtt.").exists()


def test_a_viewer_cannot_place_modify_or_delete(world, kite_account, fake_kite):
    for act in (
        lambda: gtt_place(actor=world.viewer, account_id=kite_account.pk, request=single(world)),
        lambda: gtt_modify(actor=world.viewer, account_id=kite_account.pk, trigger_id="100", request=single(world)),
        lambda: gtt_delete(actor=world.viewer, account_id=kite_account.pk, trigger_id="100"),
    ):
        with pytest.raises(BrokerAccountForbidden):
            act()
    assert len(fake_kite.requests) == 0


def test_kites_refusal_passes_through_as_it_is_and_nothing_is_audited(world, kite_account, fake_kite):
    fake_kite.fail(
        status=400, error_type="InputException", message="Invalid trigger price", method="POST", path=TRIGGERS
    )
    with pytest.raises(BrokerRejected) as refused:
        gtt_place(actor=world.trader, account_id=kite_account.pk, request=single(world))
    assert refused.value.message == "Invalid trigger price"
    assert not AuditEvent.objects.filter(action="gtt.placed").exists()


def test_deleting_a_trigger_kite_does_not_have_is_kites_not_found(world, kite_account, fake_kite):
    with pytest.raises(BrokerRejected) as refused:
        gtt_delete(actor=world.trader, account_id=kite_account.pk, trigger_id="999")
    assert refused.value.status == 404


@pytest.mark.parametrize(
    ("request_of", "code", "field"),
    [
        (lambda w: single(w, kind="bracket"), "gtt_kind_invalid", "kind"),
        (lambda w: single(w, side="HOLD"), "invalid_side", "side"),
        (lambda w: single(w, instrument_id=10**9), "instrument_not_found", "instrument"),
        (lambda w: single(w, instrument_id=w.expired.pk, product="NRML"), "contract_expired", "instrument"),
        (lambda w: single(w, product="MIS"), "gtt_product_invalid", "product"),
        (lambda w: single(w, product="NRML"), "product_not_allowed_for_instrument", "product"),
        (lambda w: single(w, quantity=0), "quantity_not_positive", "quantity"),
        (lambda w: single(w, quantity=-5), "quantity_not_positive", "quantity"),
        (lambda w: single(w, quantity=10**12), "quantity_out_of_range", "quantity"),
        (lambda w: single(w, quantity=True), "quantity_not_whole", "quantity"),
        (
            lambda w: single(w, instrument_id=w.future.pk, product="NRML", quantity=10),
            "quantity_not_lot_multiple",
            "quantity",
        ),
        (lambda w: single(w, trigger_price=None), "trigger_price_required", "trigger_price"),
        (lambda w: single(w, price=Decimal("-1")), "price_not_positive", "price"),
        (lambda w: single(w, price=Decimal("0")), "price_not_positive", "price"),
        (lambda w: single(w, price=Decimal("NaN")), "price_not_finite", "price"),
        (lambda w: single(w, price=Decimal("Infinity")), "price_not_finite", "price"),
        (lambda w: single(w, price=Decimal("1e30")), "price_out_of_range", "price"),
        (lambda w: single(w, price=950.5), "price_not_a_number", "price"),
        (lambda w: single(w, trigger_price=Decimal("950.03")), "trigger_price_off_tick", "trigger_price"),
        (lambda w: single(w, trigger_price=Decimal("1000")), "gtt_trigger_at_last_price", "trigger_price"),
        (lambda w: oco(w, stoploss_trigger=Decimal("1000")), "gtt_stoploss_wrong_side", "stoploss_trigger"),
        (lambda w: oco(w, stoploss_trigger=Decimal("1010")), "gtt_stoploss_wrong_side", "stoploss_trigger"),
        (lambda w: oco(w, target_trigger=Decimal("990")), "gtt_target_wrong_side", "target_trigger"),
        (lambda w: oco(w, side="BUY"), "gtt_stoploss_wrong_side", "stoploss_trigger"),
        (lambda w: oco(w, target_price=Decimal("1051.01")), "target_price_off_tick", "target_price"),
        (lambda w: oco(w, stoploss_price=None), "stoploss_price_required", "stoploss_price"),
    ],
)
def test_bad_input_is_refused_with_its_code_before_anything_is_sent(
    world, kite_account, fake_kite, request_of, code, field
):
    world.quote(world.future, 20000, bid=19999.9, ask=20000.1)
    with pytest.raises(GttInvalid) as refused:
        gtt_place(actor=world.trader, account_id=kite_account.pk, request=request_of(world))
    assert (refused.value.code, refused.value.status, refused.value.extra.get("field")) == (code, 422, field)
    assert not fake_kite.requests


def test_a_buy_oco_exits_a_short_with_the_stop_above_and_the_target_below(world, kite_account, fake_kite):
    request = oco(
        world,
        side="BUY",
        stoploss_trigger=Decimal("1050"),
        stoploss_price=Decimal("1051"),
        target_trigger=Decimal("950"),
        target_price=Decimal("949"),
    )
    gtt_place(actor=world.trader, account_id=kite_account.pk, request=request)
    assert _sent(fake_kite.last("POST", TRIGGERS))["condition"]["trigger_values"] == [1050.0, 950.0]


def test_without_a_last_price_a_gtt_is_refused(world, kite_account, fake_kite):
    from marketdata import quotes

    quotes.store().clear()
    with pytest.raises(GttInvalid) as refused:
        gtt_place(actor=world.trader, account_id=kite_account.pk, request=single(world))
    assert refused.value.code == "gtt_no_last_price" and not fake_kite.requests


HOSTILE = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True),  # any Decimal: huge, tiny, negative, NaN, sNaN, infinite
    st.sampled_from([Decimal("1e400"), Decimal("-1e400"), Decimal("1e-400"), Decimal("9999999999.95")]),
    st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), places=4),  # off-tick, negative, out of range
)
FIELD = st.sampled_from(["trigger_price", "price"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=FIELD, value=HOSTILE)
def test_any_number_is_either_valid_or_refused_with_a_code_naming_its_field(
    world, kite_account, fake_kite, field, value
):
    sent_before = fake_kite.count("POST", TRIGGERS)
    try:
        gtt_place(actor=world.trader, account_id=kite_account.pk, request=single(world, **{field: value}))
    except GttInvalid as refused:
        assert refused.status == 422
        assert refused.code.startswith(f"{field}_") or refused.code == "gtt_trigger_at_last_price"
        assert fake_kite.count("POST", TRIGGERS) == sent_before
        return
    # Accepted: positive, below the bound, on the 0.05 tick, and sent as exactly that number.
    assert 0 < value < Decimal(10) ** 10 and value % Decimal("0.05") == 0
    sent = _sent(fake_kite.last("POST", TRIGGERS))
    number = sent["condition"]["trigger_values"][0] if field == "trigger_price" else sent["orders"][0]["price"]
    assert Decimal(repr(number)) == value
