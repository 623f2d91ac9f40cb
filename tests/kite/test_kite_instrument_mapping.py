"""The Kite adapter names instruments as Kite's instruments list does (the Kite mapping,
``brokers.instrument_map``), not as our symbol master does: orders and GTTs go out under Kite's
exchange and trading symbol, Kite's positions come back to our instruments by Kite's token, and an
instrument Kite does not list is refused before anything is sent."""

from __future__ import annotations

from decimal import Decimal

import pytest

from audit.models import AuditEvent
from brokers.adapters.base import GTT_SINGLE, GttLeg, GttOrder
from brokers.adapters.registry import adapter_for
from brokers.instrument_map import instrument_map_invalidate
from brokers.models import BrokerInstrument
from orders.models import Order
from orders.services import place_order
from orders.states import Status
from tests.kite.mapping import map_for_kite

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_order_goes_out_under_kites_trading_symbol_and_exchange_not_ours(world, kite_account, fake_kite):
    BrokerInstrument.objects.filter(broker="kite", instrument=world.equity).update(tradingsymbol="RELIANCE-BE")
    instrument_map_invalidate()
    request = world.request(world.equity, price=Decimal("990"))
    order = place_order(actor=world.trader, account=kite_account, request=request, source="api")
    assert order.status == Status.OPEN
    sent = fake_kite.last("POST", "/orders/regular").form_dict
    assert (sent["exchange"], sent["tradingsymbol"]) == ("NSE", "RELIANCE-BE")


def test_an_instrument_kite_does_not_list_is_refused_as_not_sent_with_a_clear_message(world, kite_account, fake_kite):
    BrokerInstrument.objects.filter(broker="kite", instrument=world.equity).delete()
    instrument_map_invalidate()
    request = world.request(world.equity, price=Decimal("990"))
    order = place_order(actor=world.trader, account=kite_account, request=request, source="api")
    assert order.status == Status.REJECTED
    assert "NSE:RELIANCE is not in Kite's instruments list (no Kite mapping): nothing was sent." in order.message
    assert fake_kite.count("POST", "/orders/regular") == 0
    rejected = AuditEvent.objects.get(action="order.rejected")
    assert rejected.payload_data["reason"] == "broker_instrument_not_mapped"
    assert Order.objects.filter(status=Status.OPEN).count() == 0


def test_a_gtt_on_an_instrument_kite_does_not_list_is_refused_before_sending(world, kite_account, fake_kite):
    BrokerInstrument.objects.filter(broker="kite", instrument=world.equity).delete()
    instrument_map_invalidate()
    leg = GttLeg(trigger_price=Decimal("950"), side="BUY", quantity=1, price=Decimal("951"), product="CNC")
    order = GttOrder(kind=GTT_SINGLE, instrument_id=world.equity.pk, legs=(leg,), last_price=Decimal("1000"))
    with pytest.raises(Exception) as caught:
        adapter_for(kite_account).gtt_place(order)
    assert getattr(caught.value, "code", "") == "broker_instrument_not_mapped"
    assert fake_kite.count("POST", "/gtt/triggers") == 0


def test_kites_positions_come_back_to_our_instrument_by_kites_token(world, kite_account, fake_kite):
    # The local Kite server's position is NSE:INFY, token 408065; our instrument spells it otherwise.
    map_for_kite(world.future, token=408065, tradingsymbol="INFY", exchange="NSE")
    (position,) = adapter_for(kite_account).positions()
    assert position.instrument_id == world.future.pk and position.net_quantity == 10
